"""feeds: the For You and Following feeds (a later issue); the package reserves the bounded context."""
