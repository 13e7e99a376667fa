"""Stack health: is every sensor stream alive at its rate, is every component reporting OK."""
