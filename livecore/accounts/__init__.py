"""Accounts: sign-up, log-in, session tokens, profiles, roles and follows."""

from livecore.accounts.accounts import Account, get_account, is_adult
from livecore.accounts.tokens import TokenError, Tokens

__all__ = ["Account", "TokenError", "Tokens", "get_account", "is_adult"]
