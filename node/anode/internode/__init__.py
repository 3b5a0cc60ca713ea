"""Node-to-node chunk transfer: an HTTP API on `[node] data_addr`, authenticated with the
cluster secret, and its client."""
