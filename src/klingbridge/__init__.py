"""klingbridge."""
