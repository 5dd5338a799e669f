"""Payment and payout providers: Stripe through the `stripe` SDK, or the local test provider.

The local provider is a real part, not a mock: it hands out payment ids and client secrets, its test card page
(/pay.html) confirms a payment, and it then signs a Stripe-shaped event with the webhook secret exactly as
Stripe does and delivers it to the same webhook code. Coins are only ever credited from that verified event.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any, Protocol

import asyncpg
import stripe

SUCCEEDING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
# Stripe's test cards that save fine but then fail an off-session charge: declined, or needing the payer's action.
DECLINED_OFF_SESSION_CARD = "4000000000000341"
AUTHENTICATION_CARD = "4000002500003155"
SAVED_TEST_CARDS = {SUCCEEDING_CARD: "lpm_", DECLINED_OFF_SESSION_CARD: "lpm_declines_",
                    AUTHENTICATION_CARD: "lpm_authenticates_"}


@dataclass(frozen=True)
class PaymentStart:
    provider_ref: str
    client_secret: str


class PaymentProviderError(Exception):
    """The provider could not be reached or refused the request."""


@dataclass(frozen=True)
class CardSetup:
    """A card being saved that the payer must still confirm with the provider (a Stripe SetupIntent)."""

    setup_ref: str
    client_secret: str


@dataclass(frozen=True)
class SavedCard:
    """A card the provider keeps for charging its customer later, off-session."""

    method_ref: str
    brand: str
    last4: str
    fingerprint: str


@dataclass(frozen=True)
class Charge:
    """What an off-session charge of a saved card came to: `succeeded` (the verified webhook still decides),
    `requires_action` (the payer must confirm it: `client_secret`) or `declined` (`reason` says why)."""

    provider_ref: str | None
    status: str
    client_secret: str | None = None
    reason: str = ""


class CardRefused(Exception):
    """The provider refused to save the card (declined, or the setup belongs to someone else or is unfinished);
    `code` says which: card-declined, setup-not-yours, setup-not-complete, card-not-accepted."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class PayoutFailed(Exception):
    """The provider did not send the money and will not: the payout is reversed; the message says why."""


class PayoutUncertain(Exception):
    """The provider could not be asked, or its answer was lost: the money may or may not have gone. The payout
    stays pending and is sent again with the same idempotency key (or looked up) when it is retried."""


class DestinationUnavailable(Exception):
    """The provider could not be reached while setting up or checking a payout destination."""


class DestinationRefused(Exception):
    """The provider refused to create or link a payout destination; the message says why."""


@dataclass(frozen=True)
class PayoutDestination:
    """Where a creator's payouts go and whether they can go there now.

    state: none (nothing set up), onboarding (the creator has not finished the provider's forms), restricted
    (submitted, but the provider still needs something or is verifying), active (payouts can be sent), rejected
    (the provider refused the account), closed (the account no longer exists at the provider).
    """

    provider: str
    state: str
    account_id: str | None = None
    payouts_enabled: bool = False
    requirements_due: tuple[str, ...] = ()
    disabled_reason: str | None = None
    onboarding_url: str | None = None
    onboarding_expires_at: int | None = None

    def view(self) -> dict[str, Any]:
        return {"provider": self.provider, "state": self.state, "account_id": self.account_id,
                "payouts_enabled": self.payouts_enabled, "requirements_due": list(self.requirements_due),
                "disabled_reason": self.disabled_reason, "onboarding_url": self.onboarding_url,
                "onboarding_expires_at": self.onboarding_expires_at}


class PaymentProvider(Protocol):
    name: str

    async def start_payment(
        self, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentStart: ...

    async def create_customer(self, owner_id: int) -> str:
        """The provider's customer for one of our users (the same one on a retry)."""
        ...

    async def save_card(
        self, customer_ref: str, card_number: str | None, setup_ref: str | None
    ) -> CardSetup | SavedCard:
        """Save a card for later off-session charges: a SetupIntent to confirm, or the card once it is saved."""
        ...

    async def charge_saved(self, customer_ref: str, method_ref: str, amount_cents: int, currency: str,
                           metadata: dict[str, str], idempotency_key: str) -> Charge:
        """Charge a saved card off-session (the payer is not there)."""
        ...

    async def confirm_saved(self, provider_ref: str, customer_ref: str, method_ref: str,
                            idempotency_key: str) -> Charge:
        """Confirm an existing PaymentIntent on-session (the payer is there) with their saved card."""
        ...

    async def refund(self, provider_ref: str, amount_cents: int, idempotency_key: str) -> str:
        """Give back part or all of a payment; the refund's reference."""
        ...


class PayoutProvider(Protocol):
    name: str

    async def destination(self, creator_id: int, now_ms: int, *, refresh: bool = True) -> PayoutDestination:
        """The creator's payout destination (state `none` if nothing is set up), refreshed from the provider."""
        ...

    async def set_up_destination(
        self, creator_id: int, country: str, return_url: str, refresh_url: str, now_ms: int
    ) -> PayoutDestination:
        """Create the creator's destination if needed; the answer carries where to finish setting it up."""
        ...

    async def refresh_account(self, account_id: str, now_ms: int) -> PayoutDestination | None:
        """Re-read one destination account from the provider (after it told us it changed); None if not ours."""
        ...

    async def send_payout(
        self, creator_id: int, amount_cents: int, idempotency_key: str, *, look_up_first: bool = False
    ) -> str:
        """Send the money; the provider's reference. PayoutFailed: not sent. PayoutUncertain: unknown.
        `look_up_first`: first look for a transfer an earlier attempt with this key made (past the provider's
        idempotency window a repeated key no longer protects against paying twice)."""
        ...


def stripe_client(secret_key: str, api_base: str, transport: stripe.AIOHTTPClient) -> stripe.StripeClient:
    """A StripeClient on aiohttp; `api_base` points it at another Stripe-compatible server (localstripe)."""
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(secret_key, base_addresses=base, http_client=transport, max_network_retries=2)


class StripePayments:
    name = "stripe"

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def start_payment(
        self, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentStart:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                {"amount": amount_cents, "currency": currency, "metadata": metadata},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused the payment: {exc.user_message or exc}") from exc
        return PaymentStart(intent.id, intent.client_secret or "")

    async def create_customer(self, owner_id: int) -> str:
        try:
            customer = await self._client.v1.customers.create_async(
                {"metadata": {"livecore_user_id": str(owner_id)}}, {"idempotency_key": f"customer-{owner_id}"})
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe could not create the customer: {exc.user_message or exc}") from exc
        return customer.id

    async def save_card(
        self, customer_ref: str, card_number: str | None, setup_ref: str | None
    ) -> CardSetup | SavedCard:
        """Without `setup_ref`: a SetupIntent for off-session use that the page confirms with Stripe.js. With it:
        the card that SetupIntent saved, once Stripe says it succeeded for this customer."""
        if card_number is not None:
            raise CardRefused("card-not-accepted", "with Stripe, card numbers go to Stripe.js, never to this server")
        try:
            if setup_ref is None:
                intent = await self._client.v1.setup_intents.create_async(
                    {"customer": customer_ref, "usage": "off_session", "payment_method_types": ["card"]})
                return CardSetup(intent.id, intent.client_secret or "")
            intent = await self._client.v1.setup_intents.retrieve_async(setup_ref)
        except stripe.StripeError as exc:
            if exc.http_status in (400, 404):
                raise CardRefused("setup-not-yours", f"Stripe does not know that SetupIntent: {exc}") from exc
            raise PaymentProviderError(f"Stripe did not answer about the card: {exc.user_message or exc}") from exc
        if intent.customer != customer_ref:
            raise CardRefused("setup-not-yours", "that SetupIntent belongs to another customer")
        if intent.status != "succeeded" or not intent.payment_method:
            raise CardRefused("setup-not-complete", f"the SetupIntent is {intent.status}; confirm it first")
        method_id = intent.payment_method if isinstance(intent.payment_method, str) else intent.payment_method.id
        try:
            method = await self._client.v1.payment_methods.retrieve_async(method_id)
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe did not answer about the card: {exc.user_message or exc}") from exc
        card = method.card
        return SavedCard(method.id, card.brand if card else "card", card.last4 if card else "????",
                         (card.fingerprint if card else None) or method.id)

    async def charge_saved(self, customer_ref: str, method_ref: str, amount_cents: int, currency: str,
                           metadata: dict[str, str], idempotency_key: str) -> Charge:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                {"amount": amount_cents, "currency": currency, "customer": customer_ref, "payment_method": method_ref,
                 "off_session": True, "confirm": True, "metadata": metadata},
                {"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            return _refused_charge(exc)
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe did not take the charge: {exc.user_message or exc}") from exc
        return _charge_of(intent)

    async def confirm_saved(self, provider_ref: str, customer_ref: str, method_ref: str,
                            idempotency_key: str) -> Charge:
        """The order's PaymentIntent, made without a customer, gets the buyer's (a saved card is usable only by its
        customer's intents) and the card, and is then confirmed; both calls keyed, so a retry repeats nothing."""
        try:
            await self._client.v1.payment_intents.update_async(
                provider_ref, {"customer": customer_ref, "payment_method": method_ref},
                {"idempotency_key": f"{idempotency_key}-card"})
            intent = await self._client.v1.payment_intents.confirm_async(
                provider_ref, {}, {"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            return _refused_charge(exc)
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe did not confirm the payment: {exc.user_message or exc}") from exc
        return _charge_of(intent)

    async def refund(self, provider_ref: str, amount_cents: int, idempotency_key: str) -> str:
        try:
            made = await self._client.v1.refunds.create_async(
                {"payment_intent": provider_ref, "amount": amount_cents}, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe did not take the refund: {exc.user_message or exc}") from exc
        return made.id


def _refused_charge(exc: stripe.CardError) -> Charge:
    """What a card error of a charge or confirmation says: the bank wants the payer's action, or a decline."""
    found = exc.error.payment_intent if exc.error is not None else None
    ref = found.get("id") if found else None
    if exc.code == "authentication_required":
        return Charge(ref, "requires_action", found.get("client_secret") if found else None,
                      "the bank asks the payer to confirm this payment")
    return Charge(ref, "declined", reason=exc.user_message or exc.code or "the card was declined")


def _charge_of(intent: stripe.PaymentIntent) -> Charge:
    if intent.status == "requires_action":
        return Charge(intent.id, "requires_action", intent.client_secret,
                      "the bank asks the payer to confirm this payment")
    if intent.status in ("requires_payment_method", "canceled"):
        return Charge(intent.id, "declined", reason="the card was declined")
    return Charge(intent.id, "succeeded")


# Stripe keeps an idempotency key for at least 24 hours. A payout first sent longer ago than this is looked up by
# its transfer group before it is sent again, because a repeated key would no longer stop a second transfer.
PROVIDER_IDEMPOTENCY_WINDOW_S = 23 * 3600


def _stripe_did_nothing(exc: stripe.StripeError) -> bool:
    """Whether Stripe certainly did not act: a 4xx answer, except 409 (a concurrent request with the same
    idempotency key), 429 (rate limited) and an idempotency error (the key was first used with other parameters,
    say before the creator's destination changed: that first request may have sent money). No answer or a 5xx
    leaves it unknown."""
    status = exc.http_status
    return (status is not None and 400 <= status < 500 and status not in (409, 429)
            and not isinstance(exc, stripe.IdempotencyError))


def _account_gone(exc: stripe.StripeError) -> bool:
    """Stripe answers 403 account_invalid (or 404) for a connected account that was deleted or disconnected."""
    return exc.http_status == 404 or (exc.http_status == 403 and exc.code == "account_invalid")


def _destination_of(found: stripe.Account) -> PayoutDestination:
    account = found.to_dict()
    requirements = account.get("requirements") or {}
    reason = requirements.get("disabled_reason")
    due = list(dict.fromkeys([*(requirements.get("past_due") or []), *(requirements.get("currently_due") or [])]))
    if reason and str(reason).startswith("rejected"):
        state = "rejected"
    elif (account.get("capabilities") or {}).get("transfers") == "active":
        state = "active"
    elif not account.get("details_submitted"):
        state = "onboarding"
    else:
        state = "restricted"
    return PayoutDestination("stripe", state, found.id, bool(account.get("payouts_enabled")), tuple(due), reason)


class StripePayouts:
    """Cash-out as a Stripe Connect transfer to the creator's connected account.

    The connected account is Express-style (Stripe hosts the onboarding forms and the creator's dashboard; the
    platform pays the fees and carries the losses; only the `transfers` capability is requested): the platform
    sends it a Transfer per payout, and Stripe pays the account's bank on the account's schedule. The creator's
    account id and its last known state are kept in `payout_destinations`.
    """

    name = "stripe"

    def __init__(self, client: stripe.StripeClient, pool: asyncpg.Pool) -> None:
        self._client = client
        self._pool = pool

    async def destination(self, creator_id: int, now_ms: int, *, refresh: bool = True) -> PayoutDestination:
        row = await self._pool.fetchrow("SELECT * FROM payout_destinations WHERE creator_id = $1", creator_id)
        if row is None:
            return PayoutDestination(self.name, "none")
        if not refresh or row["state"] in ("rejected", "closed"):
            return _stored(row)
        return await self._refresh(row["stripe_account"], now_ms)

    async def set_up_destination(
        self, creator_id: int, country: str, return_url: str, refresh_url: str, now_ms: int
    ) -> PayoutDestination:
        found = await self.destination(creator_id, now_ms)
        if found.state in ("none", "closed"):
            found = await self._create_account(creator_id, country, found.account_id, now_ms)
        if found.state in ("active", "rejected"):
            return found
        try:
            link = await self._client.v1.account_links.create_async({
                "account": found.account_id, "type": "account_onboarding",
                "return_url": return_url, "refresh_url": refresh_url,
            })
        except stripe.StripeError as exc:
            raise _destination_error("create an onboarding link", exc) from exc
        return replace(found, onboarding_url=link.url, onboarding_expires_at=link.expires_at)

    async def refresh_account(self, account_id: str, now_ms: int) -> PayoutDestination | None:
        if not await self._pool.fetchval("SELECT 1 FROM payout_destinations WHERE stripe_account = $1", account_id):
            return None
        return await self._refresh(account_id, now_ms)

    async def send_payout(
        self, creator_id: int, amount_cents: int, idempotency_key: str, *, look_up_first: bool = False
    ) -> str:
        destination = await self._pool.fetchval(
            "SELECT stripe_account FROM payout_destinations WHERE creator_id = $1", creator_id
        )
        if destination is None:
            raise PayoutFailed("no Stripe connected account is set up for this creator")
        group = f"livecore-{idempotency_key}"
        if look_up_first:
            try:
                earlier = await self._client.v1.transfers.list_async({"transfer_group": group, "limit": 10})
            except stripe.StripeError as exc:  # an earlier attempt may have sent it: never a reason to reverse
                raise PayoutUncertain(f"Stripe could not be asked for earlier transfers: {exc}") from exc
            for transfer in earlier.data:
                if transfer.amount == amount_cents and transfer.destination == destination:
                    return transfer.id
            if earlier.data:
                raise PayoutUncertain(f"transfer group {group} holds transfers that do not match this payout")
        try:
            transfer = await self._client.v1.transfers.create_async(
                {"amount": amount_cents, "currency": "usd", "destination": destination, "transfer_group": group,
                 "description": f"livecore {idempotency_key}",
                 "metadata": {"livecore_payout": idempotency_key, "livecore_creator_id": str(creator_id)}},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            if _stripe_did_nothing(exc):
                raise PayoutFailed(f"Stripe refused the transfer: {exc.user_message or exc}") from exc
            raise PayoutUncertain(f"Stripe's answer about the transfer was lost: {exc}") from exc
        return transfer.id

    async def _create_account(
        self, creator_id: int, country: str, replacing: str | None, now_ms: int
    ) -> PayoutDestination:
        # One key per creator (and per replaced account): a retry or a concurrent request gets the same account.
        key = f"payout-destination-{creator_id}" + (f"-after-{replacing}" if replacing else "")
        try:
            account = await self._client.v1.accounts.create_async({
                "country": country,
                "controller": {"stripe_dashboard": {"type": "express"}, "fees": {"payer": "application"},
                               "losses": {"payments": "application"}},
                "capabilities": {"transfers": {"requested": True}},
                "metadata": {"livecore_creator_id": str(creator_id)},
            }, {"idempotency_key": key})
        except stripe.StripeError as exc:
            raise _destination_error("create a connected account", exc) from exc
        created = _destination_of(account)
        # A closed account is replaced; a concurrent request that stored one first wins (it has the same id).
        await self._pool.execute(
            "INSERT INTO payout_destinations (creator_id, stripe_account, state, created_ms, updated_ms)"
            " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (creator_id) DO UPDATE"
            " SET stripe_account = EXCLUDED.stripe_account, state = EXCLUDED.state,"
            " created_ms = EXCLUDED.created_ms, updated_ms = EXCLUDED.updated_ms"
            " WHERE payout_destinations.state = 'closed'",
            creator_id, account.id, created.state, now_ms,
        )
        stored = await self._pool.fetchval(
            "SELECT stripe_account FROM payout_destinations WHERE creator_id = $1", creator_id)
        return created if stored == account.id else await self._refresh(stored, now_ms)

    async def _refresh(self, account_id: str, now_ms: int) -> PayoutDestination:
        try:
            found = _destination_of(await self._client.v1.accounts.retrieve_async(account_id))
        except stripe.StripeError as exc:
            if not _account_gone(exc):
                raise _destination_error("read the connected account", exc) from exc
            found = PayoutDestination(self.name, "closed", account_id, disabled_reason=exc.user_message or str(exc))
        await self._pool.execute(
            "UPDATE payout_destinations SET state = $2, updated_ms = $3 WHERE stripe_account = $1",
            account_id, found.state, now_ms,
        )
        return found


def _stored(row: asyncpg.Record) -> PayoutDestination:
    return PayoutDestination("stripe", row["state"], row["stripe_account"], row["state"] == "active")


def _destination_error(doing: str, exc: stripe.StripeError) -> Exception:
    if exc.http_status in (400, 404):  # about what we asked for (say, a country Stripe does not serve)
        return DestinationRefused(f"Stripe refused to {doing}: {exc.user_message or exc}")
    return DestinationUnavailable(f"Stripe did not answer when asked to {doing}: {exc}")


class LocalPayments:
    name = "local"

    async def start_payment(
        self, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentStart:
        ref = "lpi_" + secrets.token_urlsafe(12)
        return PaymentStart(ref, f"{ref}_secret_{secrets.token_urlsafe(12)}")

    async def create_customer(self, owner_id: int) -> str:
        return "lcus_" + secrets.token_urlsafe(12)

    async def save_card(
        self, customer_ref: str, card_number: str | None, setup_ref: str | None
    ) -> CardSetup | SavedCard:
        """The test cards only: SUCCEEDING_CARD is saved, DECLINED_CARD is declined; DECLINED_OFF_SESSION_CARD and
        AUTHENTICATION_CARD are saved, and their off-session charges are declined or need the payer's action."""
        if card_number == DECLINED_CARD:
            raise CardRefused("card-declined", "the local test provider declined this card")
        prefix = SAVED_TEST_CARDS.get(card_number or "")
        if prefix is None or card_number is None:
            raise CardRefused("card-not-accepted",
                              f"the local test provider takes its test cards only ({SUCCEEDING_CARD} is saved)")
        digest = hashlib.sha256(f"{customer_ref}:{card_number}".encode()).hexdigest()[:16]
        return SavedCard(prefix + digest, "visa", card_number[-4:], digest)

    async def charge_saved(self, customer_ref: str, method_ref: str, amount_cents: int, currency: str,
                           metadata: dict[str, str], idempotency_key: str) -> Charge:
        """Declines a card saved as DECLINED_OFF_SESSION_CARD, asks for action on AUTHENTICATION_CARD; otherwise the
        charge succeeds and, as with any payment here, only the signed event the caller delivers credits it."""
        ref = "lpi_" + secrets.token_urlsafe(12)
        if method_ref.startswith(SAVED_TEST_CARDS[DECLINED_OFF_SESSION_CARD]):
            return Charge(ref, "declined", reason="the local test provider declined the off-session charge")
        if method_ref.startswith(SAVED_TEST_CARDS[AUTHENTICATION_CARD]):
            return Charge(ref, "requires_action", f"{ref}_secret_{secrets.token_urlsafe(12)}",
                          "the local test provider asks the payer to confirm this payment")
        return Charge(ref, "succeeded")

    async def confirm_saved(self, provider_ref: str, customer_ref: str, method_ref: str,
                            idempotency_key: str) -> Charge:
        """The same test cards as an off-session charge, on the order's own payment (the caller delivers the
        signed event that a success makes)."""
        if method_ref.startswith(SAVED_TEST_CARDS[DECLINED_OFF_SESSION_CARD]):
            return Charge(provider_ref, "declined", reason="the local test provider declined the card")
        if method_ref.startswith(SAVED_TEST_CARDS[AUTHENTICATION_CARD]):
            return Charge(provider_ref, "requires_action", None,
                          "the local test provider asks the payer to confirm this payment on its card page")
        return Charge(provider_ref, "succeeded")

    async def refund(self, provider_ref: str, amount_cents: int, idempotency_key: str) -> str:
        return "lre_" + secrets.token_urlsafe(12)


def local_payment_event(event_type: str, purchase: asyncpg.Record, created_s: int) -> dict[str, Any]:
    """A Stripe-shaped event about one of the local provider's payments for a coin purchase."""
    return local_intent_event(event_type, purchase["provider_ref"], purchase["amount_cents"], purchase["currency"],
                              {"purchase_id": str(purchase["id"])}, created_s)


def local_intent_event(event_type: str, ref: str, amount_cents: int, currency: str, metadata: dict[str, str],
                       created_s: int) -> dict[str, Any]:
    """A Stripe-shaped event about one of the local provider's PaymentIntents."""
    intent = {
        "id": ref, "object": "payment_intent", "amount": amount_cents, "currency": currency, "metadata": metadata,
        "status": "succeeded" if event_type == "payment_intent.succeeded" else "requires_payment_method",
    }
    return {"id": "evt_local_" + secrets.token_urlsafe(12), "object": "event", "type": event_type,
            "created": created_s, "data": {"object": intent}}


LOCAL_DESTINATION = PayoutDestination("local", "active", payouts_enabled=True)


class LocalPayouts:
    """Pays out at once into its test bank, so a creator has nothing to set up (every destination is the test
    bank); a creator listed in `failing` gets a failed payout (how tests and demos see reversals)."""

    name = "local"

    def __init__(self) -> None:
        self.failing: set[int] = set()

    async def destination(self, creator_id: int, now_ms: int, *, refresh: bool = True) -> PayoutDestination:
        return LOCAL_DESTINATION

    async def set_up_destination(
        self, creator_id: int, country: str, return_url: str, refresh_url: str, now_ms: int
    ) -> PayoutDestination:
        return LOCAL_DESTINATION

    async def refresh_account(self, account_id: str, now_ms: int) -> PayoutDestination | None:
        return None

    async def send_payout(
        self, creator_id: int, amount_cents: int, idempotency_key: str, *, look_up_first: bool = False
    ) -> str:
        if creator_id in self.failing:
            raise PayoutFailed("the local test bank declined the transfer")
        return "lpo_" + secrets.token_urlsafe(12)
