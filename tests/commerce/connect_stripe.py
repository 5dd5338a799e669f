"""localstripe with the part of Stripe Connect it lacks, for the payout tests: run in its own process.

localstripe (1.15.10, the newest) implements no part of Connect: no /v1/accounts, /v1/account_links or
/v1/transfers. The few endpoints livecore's payouts use are added here to the localstripe process under test, built
on localstripe's own objects, store and signed webhooks, and shaped like Stripe's API reference (the parameters and
answers the node relies on, Stripe's error codes for a missing or disabled destination, idempotency keys). They are
our model of Stripe, not Stripe: what they do not check (balances, country rules, the real onboarding forms), a
test cannot catch. `/_config/connect/...` are test switches: complete onboarding, drop transfer answers, expire keys.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe.errors import UserError

_here: dict[str, str] = {"url": ""}
_replies: dict[tuple[str, str], dict[str, Any]] = {}  # (path, Idempotency-Key) -> the first answer
_links: dict[str, dict[str, Any]] = {}  # account link token -> account, urls, expiry
_faults: dict[str, int] = {"drop_transfer_answers": 0}


class _Plain(dict):  # type: ignore[type-arg]
    def _export(self, expand: Any = None) -> dict[str, Any]:
        return dict(self)


class ConnectAccount(ls.StripeObject):
    """POST /v1/accounts (type or controller properties), GET, DELETE, POST /v1/accounts/{id}/reject."""

    object = "account"
    _id_prefix = "acct_"

    def __init__(self, type: str | None = None, controller: dict | None = None, country: str | None = None,
                 email: str | None = None, capabilities: dict | None = None, business_type: str | None = None,
                 metadata: dict | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise UserError(400, "Received unknown parameters: " + ", ".join(kwargs))
        dashboard = ((controller or {}).get("stripe_dashboard") or {}).get("type")
        if type is None and controller is None:
            raise UserError(400, "You must provide either `type` or `controller`", {"param": "type"})
        requested = sorted(name for name, wanted in (capabilities or {}).items()
                           if ls.try_convert_to_bool((wanted or {}).get("requested")) is True)
        if (type == "express" or dashboard == "express") and not requested:
            raise UserError(400, "You must request at least one capability for this account",
                            {"param": "capabilities"})
        super().__init__()
        self.type = type or {"express": "express", "none": "custom"}.get(dashboard or "", "standard")
        self.controller = controller or {}
        self.country = country or "US"
        self.email = email
        self.business_type = business_type
        self.metadata = metadata or {}
        self.details_submitted = False
        self.charges_enabled = False
        self.payouts_enabled = False
        self.capabilities = {name: "inactive" for name in requested}
        self.requirements = {"currently_due": ["business_type", "external_account", "tos_acceptance.date"],
                             "past_due": [], "eventually_due": [], "disabled_reason": "requirements.past_due"}

    @classmethod
    def _api_retrieve(cls, id: str) -> ConnectAccount:
        found = ls.store.get(f"account:{id}")
        if found is None:
            raise UserError(403, f"The provided key does not have access to account '{id}' (or that account does "
                            "not exist). Application access may have been revoked.", {"code": "account_invalid"})
        return found

    @classmethod
    def _api_reject(cls, id: str, reason: str | None = None, **kwargs: Any) -> ConnectAccount:
        account = cls._api_retrieve(id)
        if reason not in ("fraud", "terms_of_service", "other") or kwargs:
            raise UserError(400, "Invalid reason", {"param": "reason"})
        account.capabilities = {name: "inactive" for name in account.capabilities}
        account.charges_enabled = account.payouts_enabled = False
        account.requirements = {**account.requirements, "disabled_reason": f"rejected.{reason}"}
        ls.schedule_webhook(ls.Event("account.updated", account))
        return account

    def _complete_onboarding(self) -> None:
        self.details_submitted = self.charges_enabled = self.payouts_enabled = True
        self.capabilities = {name: "active" for name in self.capabilities}
        self.requirements = {"currently_due": [], "past_due": [], "eventually_due": [], "disabled_reason": None}
        ls.schedule_webhook(ls.Event("account.updated", self))


def _create_account_link(account: str | None = None, type: str | None = None,
                         refresh_url: str | None = None, return_url: str | None = None, **kwargs: Any) -> _Plain:
    if kwargs.keys() - {"collect", "collection_options"}:
        raise UserError(400, "Received unknown parameters: " + ", ".join(kwargs))
    if type not in ("account_onboarding", "account_update"):
        raise UserError(400, "Invalid type", {"param": "type"})
    if not refresh_url or not return_url:
        raise UserError(400, "Missing required param: return_url and refresh_url", {"param": "return_url"})
    ConnectAccount._api_retrieve(account or "")
    token, now = ls.random_id(24), int(time.time())
    _links[token] = {"account": account, "refresh_url": refresh_url, "return_url": return_url,
                     "expires_at": now + 300, "used": False}
    return _Plain(object="account_link", created=now, expires_at=now + 300,
                  url=f"{_here['url']}/_config/connect/onboarding/{token}")


async def _onboarding_page(request: web.Request) -> web.Response:
    """The Stripe-hosted onboarding a creator is sent to: filling it in activates the account, then it sends the
    creator back to `return_url` (or to `refresh_url` if the link was used or has expired)."""
    link = _links.get(request.match_info["token"])
    if link is None:
        raise web.HTTPNotFound()
    if link["used"] or link["expires_at"] < time.time():
        raise web.HTTPFound(link["refresh_url"])
    link["used"] = True
    ConnectAccount._api_retrieve(link["account"])._complete_onboarding()
    raise web.HTTPFound(link["return_url"])


class ConnectTransfer(ls.StripeObject):
    """POST /v1/transfers to a connected account, GET, list by destination or transfer_group, reversals."""

    object = "transfer"
    _id_prefix = "tr_"

    def __init__(self, amount: Any = None, currency: str | None = None, destination: str | None = None,
                 description: str | None = None, metadata: dict | None = None, transfer_group: str | None = None,
                 **kwargs: Any) -> None:
        if kwargs:
            raise UserError(400, "Received unknown parameters: " + ", ".join(kwargs))
        amount = ls.try_convert_to_int(amount)
        if not isinstance(amount, int) or amount <= 0 or not currency or not destination:
            raise UserError(400, "amount, currency and destination are required")
        account = ls.store.get(f"account:{destination}")
        if account is None:
            raise UserError(400, f"No such destination: '{destination}'",
                            {"code": "resource_missing", "param": "destination"})
        if account.capabilities.get("transfers") != "active":
            raise UserError(400, "Your destination account needs to have at least one of the following capabilities "
                            "enabled: transfers, crypto_transfers, legacy_payments",
                            {"code": "insufficient_capabilities_for_transfer", "param": "destination"})
        super().__init__()
        self.amount = amount
        self.amount_reversed = 0
        self.currency = currency.lower()
        self.destination = destination
        self.description = description
        self.metadata = metadata or {}
        self.transfer_group = transfer_group
        self.reversed = False
        self.reversals = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                          "url": f"/v1/transfers/{self.id}/reversals"}
        ls.schedule_webhook(ls.Event("transfer.created", self))

    @classmethod
    def _api_list_all(cls, url: str, destination: str | None = None, transfer_group: str | None = None,
                      limit: Any = None, starting_after: str | None = None, **kwargs: Any) -> Any:
        found = super()._api_list_all(url, limit=limit, starting_after=starting_after, **kwargs)
        found._list = [t for t in found._list if destination in (None, t.destination)
                       and transfer_group in (None, t.transfer_group)]
        return found

    @classmethod
    def _api_reverse(cls, id: str, amount: Any = None, metadata: dict | None = None) -> ConnectTransferReversal:
        transfer = cls._api_retrieve(id)
        left = transfer.amount - transfer.amount_reversed
        amount = left if amount is None else ls.try_convert_to_int(amount)
        if not isinstance(amount, int) or not 0 < amount <= left:
            raise UserError(400, f"You can reverse at most {left} of this transfer", {"param": "amount"})
        reversal = ConnectTransferReversal(transfer, amount, metadata or {})
        transfer.amount_reversed += amount
        transfer.reversed = transfer.amount_reversed == transfer.amount
        transfer.reversals = {**transfer.reversals, "data": [*transfer.reversals["data"], reversal._export()],
                              "total_count": transfer.reversals["total_count"] + 1}
        ls.schedule_webhook(ls.Event("transfer.reversed", transfer))
        return reversal


class ConnectTransferReversal(ls.StripeObject):
    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(self, transfer: ConnectTransfer, amount: int, metadata: dict) -> None:
        super().__init__()
        self.amount = amount
        self.currency = transfer.currency
        self.transfer = transfer.id
        self.metadata = metadata


def _create(make: Any) -> Any:
    """A POST that creates something, answering a repeated Idempotency-Key with the first answer, as Stripe does."""
    from localstripe import server

    async def handle(request: web.Request) -> web.Response:
        idempotency_key = request.headers.get("Idempotency-Key")
        answer = _replies.get((request.path, idempotency_key or ""))
        if answer is None:
            data = dict(await server.get_post_data(request) or {})
            data.update(request.match_info)
            data.pop("expand", None)
            answer = make(**data)._export()
            if idempotency_key:
                _replies[(request.path, idempotency_key)] = answer
        if request.path == "/v1/transfers" and _faults["drop_transfer_answers"] > 0:
            _faults["drop_transfer_answers"] -= 1  # made, but the answer is lost on the way back
            assert request.transport is not None
            request.transport.abort()
        return server.json_response(answer)

    return handle


async def _drop_transfer_answers(request: web.Request) -> web.Response:
    _faults["drop_transfer_answers"] = int((await request.json())["count"])
    return web.Response()


async def _expire_idempotency_keys(request: web.Request) -> web.Response:
    _replies.clear()  # what Stripe does to a key after 24 hours
    return web.Response()


def serve_localstripe(port: int) -> None:
    """Run localstripe with the Connect endpoints above (in its own process: see the `connect_stripe` fixture)."""
    from localstripe import server

    _here["url"] = f"http://127.0.0.1:{port}"
    add = server.app.router.add_route
    add("POST", "/v1/accounts", _create(ConnectAccount))
    add("GET", "/v1/accounts/{id}", server.api_retrieve(ConnectAccount, "/v1/accounts/{id}"))
    add("DELETE", "/v1/accounts/{id}", server.api_delete(ConnectAccount, "/v1/accounts/{id}"))
    add("POST", "/v1/accounts/{id}/reject", server.api_extra(ConnectAccount._api_reject, "/v1/accounts/{id}/reject"))
    add("POST", "/v1/account_links", _create(_create_account_link))
    add("POST", "/v1/transfers", _create(ConnectTransfer))
    add("GET", "/v1/transfers", server.api_list_all(ConnectTransfer, "/v1/transfers"))
    add("GET", "/v1/transfers/{id}", server.api_retrieve(ConnectTransfer, "/v1/transfers/{id}"))
    add("POST", "/v1/transfers/{id}/reversals", _create(ConnectTransfer._api_reverse))
    add("GET", "/_config/connect/onboarding/{token}", _onboarding_page)
    add("POST", "/_config/connect/drop_transfer_answers", _drop_transfer_answers)
    add("POST", "/_config/connect/expire_idempotency_keys", _expire_idempotency_keys)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None)


