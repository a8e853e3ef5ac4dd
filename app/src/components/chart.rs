//! The cash projection chart, drawn by RowCol as SVG (no chart service, no
//! script needed to see it; the browser redraws it as the selection changes).

use crate::domain::projection::{balance_path, first_breach, Outflow};
use crate::model::Money;
use chrono::NaiveDate;
use leptos::prelude::*;

const W: f64 = 600.0;
const H: f64 = 180.0;
const PAD: f64 = 8.0;

/// What the chart draws: the held balance, committed payments on their
/// arrival dates, the selection on its bills' dates, bills due (ticks) and
/// the buffer line.
#[derive(Clone, PartialEq)]
pub struct Projection {
    pub today: NaiveDate,
    pub days: u32,
    pub available: Money,
    pub committed: Vec<Outflow>,
    pub bills_due: Vec<Outflow>,
    pub buffer_minor: i64,
}

fn points(path: &[i64], lo: i64, hi: i64, days: u32) -> String {
    let span = (hi - lo).max(1) as f64;
    path.iter()
        .enumerate()
        .map(|(i, v)| {
            let x = PAD + (W - 2.0 * PAD) * i as f64 / f64::from(days.max(2) - 1);
            let y = PAD + (H - 2.0 * PAD) * (hi - v) as f64 / span;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[component]
pub fn CashChart(p: Projection, selected: Signal<Vec<Outflow>>) -> impl IntoView {
    let cur = p.available.currency.clone();
    let base = balance_path(p.available.minor, p.today, p.days, &p.committed);
    let p2 = p.clone();
    let with_selection = Memo::new(move |_| {
        let mut all = p2.committed.clone();
        all.extend(selected.get());
        balance_path(p2.available.minor, p2.today, p2.days, &all)
    });
    let p3 = p.clone();
    let base2 = base.clone();
    let geometry = Memo::new(move |_| {
        let sel = with_selection.get();
        let hi = base2
            .iter()
            .chain(sel.iter())
            .copied()
            .max()
            .unwrap_or(0)
            .max(p3.buffer_minor);
        let lo = base2
            .iter()
            .chain(sel.iter())
            .copied()
            .min()
            .unwrap_or(0)
            .min(p3.buffer_minor)
            .min(0);
        (lo, hi)
    });
    let days = p.days;
    let buffer = p.buffer_minor;
    let x_of = move |d: i64| PAD + (W - 2.0 * PAD) * d as f64 / f64::from(days.max(2) - 1);
    let y_of = move |v: i64| {
        let (lo, hi) = geometry.get();
        PAD + (H - 2.0 * PAD) * (hi - v) as f64 / (hi - lo).max(1) as f64
    };
    let ticks: Vec<f64> = p
        .bills_due
        .iter()
        .map(|o| (o.on - p.today).num_days())
        .filter(|d| (0..i64::from(days)).contains(d))
        .map(x_of)
        .collect();
    let cur2 = cur.clone();
    let summary = move || {
        let sel = with_selection.get();
        let end = sel.last().copied().unwrap_or(0);
        let breach = first_breach(&sel, buffer);
        format!(
            "Over the next {days} days the balance goes from {} to {}{}; the buffer is {}.",
            Money::new(sel.first().copied().unwrap_or(0), cur2.clone()),
            Money::new(end, cur2.clone()),
            match breach {
                Some(d) => format!(", under the buffer from day {d}"),
                None => ", never under the buffer".into(),
            },
            Money::new(buffer, cur2.clone()),
        )
    };
    view! {
        <figure class="chart" data-testid="cash-chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="none">
                <title id="chart-title">"Cash projection"</title>
                <desc id="chart-desc">{summary.clone()}</desc>
                <line
                    class="buffer"
                    x1=PAD
                    x2=W - PAD
                    y1=move || y_of(buffer)
                    y2=move || y_of(buffer)
                />
                {ticks
                    .into_iter()
                    .map(|x| view! { <line class="due" x1=x x2=x y1=H - PAD - 10.0 y2=H - PAD /> })
                    .collect_view()}
                <polyline
                    class="held"
                    points=move || {
                        let (lo, hi) = geometry.get();
                        points(&base, lo, hi, days)
                    }
                />
                <polyline
                    class="selection"
                    data-testid="chart-selection"
                    points=move || {
                        let (lo, hi) = geometry.get();
                        points(&with_selection.get(), lo, hi, days)
                    }
                />
            </svg>
            <figcaption class="muted">
                {summary}
                " Solid: the balance less committed payments on their arrival dates; dashed: with the ticked bills; red line: the buffer; ticks: bills due. Scheduled outflows only: expected inflows are not counted."
            </figcaption>
        </figure>
    }
}
