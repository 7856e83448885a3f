"""The servicer's handlers, one module per area; each only translates protobuf <-> core operations."""
