"""Fulfilment: the print-on-demand provider interface (quotes, orders, cancellations, callbacks), its client for
the simulator (fulfilment_sim), the order lifecycle and the verification of its Standard Webhooks callbacks.

Public: `FulfilmentProvider`, `SimulatorProvider`, `Item`, `Quote`, `ProviderOrder`, `FulfilmentRefused`,
`FulfilmentUnavailable`, `recipient_of`, `verify` / `Callback` / `WebhookHeaders` / `FulfilmentEvent`, and the states in
`lifecycle`.
"""

from commerce.fulfilment.provider import (
    FulfilmentProvider,
    FulfilmentRefused,
    FulfilmentUnavailable,
    Item,
    ProviderOrder,
    Quote,
    recipient_of,
)
from commerce.fulfilment.simulator_client import SimulatorProvider
from commerce.fulfilment.webhooks import Callback, FulfilmentEvent, WebhookHeaders, verify

__all__ = ["Callback", "FulfilmentEvent", "FulfilmentProvider", "FulfilmentRefused", "FulfilmentUnavailable", "Item",
           "ProviderOrder", "Quote", "SimulatorProvider", "WebhookHeaders", "recipient_of", "verify"]
