"""The auction rules on their own (commerce/auctions/rules.py): worked examples for each rule, increment tables,
and a property test over random offers."""

from __future__ import annotations

from dataclasses import replace

import hypothesis.strategies as st
import pytest
from hypothesis import given

from commerce.auctions import increments, rules
from commerce.auctions.rules import Offer
from livecore.http import Problem

SELLER, ANN, BOB, CAT = 1, 2, 3, 4
DOLLAR = increments.presets()["dollar"]
TERMS = rules.Terms(seller_id=SELLER, start_cents=1000, increments=DOLLAR, sudden_death=False,
                    buy_now_cents=5000, snipe_window_ms=10_000, extension_ms=10_000)
OPENED = rules.opening_state(TERMS, 0, 60_000)


def bid(bidder: int, amount: int, max_cents: int | None = None) -> Offer:
    return Offer(bidder, "bid", amount, max_cents)


def run(offers: list[Offer], now_ms: int = 1000, terms: rules.Terms = TERMS) -> list[rules.Decision]:
    state, made = OPENED, []
    for offer in offers:
        decision = rules.decide(terms, state, offer, now_ms)
        made.append(decision)
        state = decision.state
    return made


def test_the_first_bid_needs_the_start_price_and_later_ones_the_increment() -> None:
    low, first, too_low, second = run([bid(ANN, 999), bid(ANN, 1000), bid(BOB, 1050), bid(BOB, 1100)])
    assert low.outcome == rules.BID_TOO_LOW and low.state == OPENED
    assert first.outcome == rules.LEADING and first.state.price_cents == 1000 and first.state.leader_id == ANN
    assert too_low.outcome == rules.BID_TOO_LOW and rules.min_next_cents(TERMS, too_low.state) == 1100
    assert second.outcome == rules.LEADING and second.outbid_id == ANN
    assert (second.state.price_cents, second.state.leader_id, second.state.version) == (1100, BOB, 3)


def test_maximums_bid_by_proxy_up_to_the_runner_up_plus_one_increment() -> None:
    made = run([bid(ANN, 1000), bid(BOB, 1200, max_cents=3000), bid(ANN, 1500), bid(ANN, 3000), bid(ANN, 3100)])
    bob_leads, ann_outbid, ann_equal, ann_leads = made[1:]
    assert bob_leads.state.price_cents == 1200 and bob_leads.state.leader_max_cents == 3000
    # Ann's 1500 is answered by Bob's maximum at 1500 + 100.
    assert ann_outbid.outcome == rules.OUTBID and ann_outbid.state.leader_id == BOB
    assert [(e.bidder_id, e.kind, e.amount_cents, e.outcome) for e in ann_outbid.entries] == [
        (ANN, "bid", 1500, rules.OUTBID), (BOB, "proxy", 1600, rules.LEADING)]
    assert [e.seq for e in ann_outbid.entries] == [3, 4] and ann_outbid.state.bids_count == 4
    # An equal maximum loses to the earlier one; the price is capped at the leader's maximum.
    assert ann_equal.outcome == rules.OUTBID and ann_equal.state.price_cents == 3000
    assert ann_equal.state.leader_id == BOB
    assert ann_leads.outcome == rules.LEADING and ann_leads.outbid_id == BOB
    assert ann_leads.state.price_cents == 3100


def test_a_challenger_with_a_higher_maximum_pays_the_runner_up_plus_one_increment() -> None:
    made = run([bid(ANN, 1000, max_cents=2000), bid(BOB, 1100, max_cents=5000)])
    assert made[1].outcome == rules.LEADING and made[1].state.price_cents == 2100
    capped = run([bid(ANN, 1000, max_cents=2000), bid(BOB, 1100, max_cents=2050)])
    assert capped[1].state.price_cents == 2050 and capped[1].state.leader_id == BOB


def test_a_leader_does_not_outbid_themselves_but_may_raise_their_maximum() -> None:
    made = run([bid(ANN, 1000), bid(ANN, 1100), bid(ANN, 1200, max_cents=4000), bid(ANN, 3000)])
    assert made[1].outcome == rules.RAISED and made[1].state.price_cents == 1000
    assert made[1].state.leader_max_cents == 1100 and made[1].entries[0].kind == "raise"
    assert made[2].outcome == rules.RAISED and made[2].state.leader_max_cents == 4000
    assert made[3].outcome == rules.ALREADY_LEADING and made[3].state == made[2].state
    assert made[2].state.price_cents == 1000 and made[2].extended_from_ms is None


def test_the_seller_cannot_bid_and_nothing_is_accepted_at_or_after_the_end() -> None:
    assert run([bid(SELLER, 2000)])[0].outcome == rules.SELLER_CANNOT_BID
    assert rules.decide(TERMS, OPENED, bid(ANN, 1000), 60_000).outcome == rules.AUCTION_CLOSED
    assert rules.decide(TERMS, OPENED, bid(ANN, 1000), 59_999).outcome == rules.LEADING
    closed = rules.close(OPENED, 60_000)
    assert closed is not None and rules.decide(TERMS, closed, bid(ANN, 1000), 1).outcome == rules.AUCTION_CLOSED


def test_a_late_bid_extends_the_end_unless_sudden_death() -> None:
    late = rules.decide(TERMS, OPENED, bid(ANN, 1000), 55_000)
    assert late.extended_from_ms == 60_000 and late.state.ends_at_ms == 65_000
    early = rules.decide(TERMS, OPENED, bid(ANN, 1000), 49_999)
    assert early.extended_from_ms is None and early.state.ends_at_ms == 60_000
    edge = rules.decide(TERMS, OPENED, bid(ANN, 1000), 50_000)  # exactly the window before the end: inside it
    assert edge.extended_from_ms is None and edge.state.ends_at_ms == 60_000  # now + 10 s is no later
    wider = replace(TERMS, extension_ms=10_001)
    assert rules.decide(wider, OPENED, bid(ANN, 1000), 50_000).state.ends_at_ms == 60_001
    sudden = replace(TERMS, sudden_death=True)
    assert rules.decide(sudden, OPENED, bid(ANN, 1000), 59_000).state.ends_at_ms == 60_000
    wide = replace(TERMS, extension_ms=3_000)  # never shortens: 59,000 + 3,000 is past the end, 55,000 + 3,000 not
    assert rules.decide(wide, OPENED, bid(ANN, 1000), 59_000).state.ends_at_ms == 62_000
    assert rules.decide(wide, OPENED, bid(ANN, 1000), 55_000).extended_from_ms is None


def test_buy_it_now_ends_the_auction_at_once_while_the_price_is_below_it() -> None:
    made = run([bid(ANN, 1000), Offer(BOB, "buy_now"), bid(CAT, 6000), Offer(CAT, "buy_now")], now_ms=2000)
    bought = made[1]
    assert bought.outcome == rules.BOUGHT and bought.outbid_id == ANN
    assert (bought.state.state, bought.state.winner_id, bought.state.price_cents) == (rules.CLOSED, BOB, 5000)
    assert bought.state.ends_at_ms == 2000 and bought.state.closed_by == "buy_now"
    assert [e.outcome for e in made[2:]] == [rules.AUCTION_CLOSED, rules.AUCTION_CLOSED]
    over = run([bid(ANN, 5000), Offer(BOB, "buy_now")])
    assert over[1].outcome == rules.BUY_NOW_UNAVAILABLE
    assert rules.decide(replace(TERMS, buy_now_cents=None), OPENED, Offer(BOB, "buy_now"), 1).outcome == \
        rules.BUY_NOW_UNAVAILABLE


def test_closing_names_the_leader_as_winner_or_nobody() -> None:
    assert rules.close(OPENED, 59_999) is None
    unsold = rules.close(OPENED, 60_000)
    assert unsold is not None and unsold.winner_id is None and unsold.version == OPENED.version + 1
    led = run([bid(ANN, 1300)])[0].state
    won = rules.close(led, 70_000)
    assert won is not None and (won.winner_id, won.price_cents, won.closed_by) == (ANN, 1300, "time")
    assert rules.close(won, 80_000) is None


def test_increment_tables() -> None:
    ebay = increments.presets()["ebay"]
    assert [ebay.step(c) for c in (0, 99, 100, 499, 500, 2499, 2500, 10**9)] == [5, 5, 25, 25, 50, 50, 100, 10000]
    assert increments.choose(None, 20).name == "whatnot"
    custom = increments.choose([[0, 10], [1000, 50]], 20)
    assert (custom.name, custom.step(999), custom.step(1000)) == ("custom", 10, 50)
    for bad in ([[5, 10]], [[0, 10], [0, 20]], [[0, 0]], [[0, 10, 3]], "nope", [[0, True]]):
        with pytest.raises(Problem) as refused:
            increments.choose(bad, 20)  # type: ignore[arg-type]
        assert refused.value.slug == "invalid-field"
    with pytest.raises(Problem):
        increments.choose([[i, 1] for i in range(21)], 20)


offers = st.lists(st.tuples(st.sampled_from([SELLER, ANN, BOB, CAT]), st.sampled_from(["bid", "bid", "buy_now"]),
                            st.integers(900, 6000), st.one_of(st.none(), st.integers(900, 8000)),
                            st.integers(0, 3000)), max_size=40)


@given(offers)
def test_random_offers_keep_the_invariants(steps: list[tuple[int, str, int, int | None, int]]) -> None:
    state, now, ceilings = OPENED, 0, []
    for bidder, kind, amount, max_cents, wait in steps:
        now += wait
        decision = rules.decide(TERMS, state, Offer(bidder, kind, amount, max_cents), now)
        after = decision.state
        if not decision.accepted:
            assert after == state
            continue
        assert after.version == state.version + 1 and after.bids_count == state.bids_count + len(decision.entries)
        assert after.price_cents >= state.price_cents and after.ends_at_ms >= min(state.ends_at_ms, now)
        if kind == "bid":
            ceilings.append((max(amount, max_cents or 0), bidder))
            top = max(c for c, _ in ceilings)
            earliest_top = next(b for c, b in ceilings if c == top)
            assert after.leader_id == earliest_top or (after.leader_id == bidder and decision.outcome == rules.RAISED)
            assert after.price_cents <= after.leader_max_cents
        state = after
