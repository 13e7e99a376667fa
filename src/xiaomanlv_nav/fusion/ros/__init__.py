"""Message <-> core conversions of the fusion's nodes."""
