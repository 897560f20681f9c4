"""Teams, their members and roles, and the tags that route alerts to them."""
