"""ads: campaigns, ad decisions and the creator marketplace (a later issue)."""
