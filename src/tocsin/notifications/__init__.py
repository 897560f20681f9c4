"""Contact methods, notification rules, deliveries and the channels that send them."""
