"""Wire → model conversions. Parsers are lenient about what Polymarket is known to vary (numbers as
strings or JSON numbers, "" for missing, seconds or milliseconds) and strict about what must be
there (ids): a missing id raises `VenueError`, never KeyError."""
