"""The input edge: fetching over HTTP and parsing what sources return into items."""
