"""The Plaid simulator judged by the official plaid-python library, unchanged.

Every call goes through plaid_api.PlaidApi, which deserializes each answer
into its typed models (a missing required field or a wrong enum value raises)
and turns every error answer into plaid.ApiException. Each step asserts and
prints one line; the first failure exits non-zero.
"""

import json
import os
import sys
import urllib.request

import plaid
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_webhook_update_request import ItemWebhookUpdateRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.transactions_refresh_request import TransactionsRefreshRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest

BASE = os.environ["SANDBOX_BASE"].rstrip("/")


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok   {msg}")


def api_for(client_id, secret):
    cfg = plaid.Configuration(
        host=f"{BASE}/plaid", api_key={"clientId": client_id, "secret": secret}
    )
    return plaid_api.PlaidApi(plaid.ApiClient(cfg))


def expect_error(call, status, error_type, error_code, what):
    """`call` must raise plaid.ApiException with this status and body."""
    try:
        call()
    except plaid.ApiException as e:
        body = json.loads(e.body)
        got = (e.status, body.get("error_type"), body.get("error_code"))
        check(
            got == (status, error_type, error_code) and body.get("request_id"),
            f"{what}: ApiException {got}",
        )
        return body
    fail(f"{what}: no ApiException")


def main():
    with urllib.request.urlopen(f"{BASE}/control/credentials") as r:
        creds = json.load(r)
    p = creds["plaid"]
    client = api_for(p["client_id"], p["secret"])
    first, second = creds["clients"][0]["plaid"], creds["clients"][1]["plaid"]
    token = first["access_token"]

    # Reads.
    accts = client.accounts_get(AccountsGetRequest(access_token=token))
    a = accts.accounts[0]
    check(
        a.balances.current is not None
        and str(a.type) == "depository"
        and accts.item.item_id == first["item_id"],
        f"/accounts/get: {a.account_id} current={a.balances.current} (cached)",
    )
    live = client.accounts_balance_get(AccountsBalanceGetRequest(access_token=token))
    lb = live.accounts[0].balances
    check(
        live.accounts[0].account_id == a.account_id and lb.available is not None,
        f"/accounts/balance/get: available={lb.available} current={lb.current}",
    )
    item = client.item_get(ItemGetRequest(access_token=token))
    check(item.item.item_id == first["item_id"], f"/item/get: {item.item.item_id}")

    # A list to its second page.
    page1 = client.transactions_sync(TransactionsSyncRequest(access_token=token, count=5))
    check(
        len(page1.added) == 5 and page1.has_more and page1.next_cursor,
        f"/transactions/sync page 1: {len(page1.added)} added, has_more={page1.has_more}",
    )
    page2 = client.transactions_sync(
        TransactionsSyncRequest(access_token=token, cursor=page1.next_cursor, count=5)
    )
    ids1 = {t.transaction_id for t in page1.added}
    check(
        len(page2.added) > 0 and not ids1 & {t.transaction_id for t in page2.added},
        f"/transactions/sync page 2: {len(page2.added)} new, has_more={page2.has_more}",
    )
    check(
        all(t.account_id == a.account_id and t.date for t in page1.added + page2.added),
        "transactions carry account_id and date",
    )
    refreshed = client.transactions_refresh(TransactionsRefreshRequest(access_token=token))
    check(bool(refreshed.request_id), "/transactions/refresh")

    # The writes RowCol makes.
    link = client.link_token_create(
        LinkTokenCreateRequest(
            client_name="RowCol",
            language="en",
            country_codes=[CountryCode("US")],
            user=LinkTokenCreateRequestUser(client_user_id="judge-1"),
            products=[Products("transactions")],
            webhook="https://example.com/plaid/webhook",
        )
    )
    check(link.link_token.startswith("link-sandbox-"), f"/link/token/create: expires {link.expiration}")
    public = client.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(
            institution_id=first["institution_id"],
            initial_products=[Products("transactions")],
        )
    )
    check(public.public_token.startswith("public-sandbox-"), "/sandbox/public_token/create")
    exch = client.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=public.public_token)
    )
    check(
        exch.access_token.startswith("access-sandbox-") and exch.item_id == first["item_id"],
        f"/item/public_token/exchange: {exch.item_id}",
    )
    expect_error(
        lambda: client.item_public_token_exchange(
            ItemPublicTokenExchangeRequest(public_token=public.public_token)
        ),
        400,
        "INVALID_INPUT",
        "INVALID_PUBLIC_TOKEN",
        "a public token is single use",
    )
    hook = client.item_webhook_update(
        ItemWebhookUpdateRequest(
            access_token=exch.access_token, webhook="https://example.com/plaid/hook2"
        )
    )
    check(hook.item.webhook == "https://example.com/plaid/hook2", "/item/webhook/update")

    # 404- and 401-equivalents.
    expect_error(
        lambda: client.accounts_get(AccountsGetRequest(access_token="access-sandbox-nope")),
        400,
        "INVALID_INPUT",
        "INVALID_ACCESS_TOKEN",
        "unknown access token",
    )
    stranger = api_for(p["client_id"], "not-the-secret")
    expect_error(
        lambda: stranger.item_get(ItemGetRequest(access_token=token)),
        400,
        "INVALID_INPUT",
        "INVALID_API_KEYS",
        "wrong secret",
    )

    # Rate limit: live balances are 5 a minute per Item; another Item's
    # allowance is its own.
    other = second["access_token"]
    for n in range(1, 21):
        try:
            client.accounts_balance_get(AccountsBalanceGetRequest(access_token=other))
        except plaid.ApiException as e:
            body = json.loads(e.body)
            check(
                e.status == 429
                and body.get("error_type") == "RATE_LIMIT_EXCEEDED"
                and body.get("error_code") == "ACCOUNTS_BALANCE_GET_LIMIT",
                f"/accounts/balance/get call {n}: 429 {body.get('error_type')}/{body.get('error_code')}",
            )
            break
    else:
        fail("/accounts/balance/get: 20 calls a minute on one Item and no 429")
    check(
        client.accounts_get(AccountsGetRequest(access_token=other)).accounts,
        "/accounts/get still answers (its own limit)",
    )
    print("plaid judge: all steps passed")


if __name__ == "__main__":
    try:
        main()
    except plaid.ApiException as e:
        fail(f"unexpected ApiException {e.status}: {e.body}")
    except plaid.ApiTypeError as e:
        fail(f"plaid-python could not accept an answer: {e}")
    except plaid.ApiValueError as e:
        fail(f"plaid-python could not accept an answer: {e}")
