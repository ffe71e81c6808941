"""Domain operations: plain functions that open the transaction and record the events."""
