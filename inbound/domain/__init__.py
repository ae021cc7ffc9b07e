"""Pure helpers of the inbound interfaces: code systems, unit matching and value conversion (standard library only)."""
