"""The peer servers a user would pick instead of livecore, as small programs the load tester starts."""
