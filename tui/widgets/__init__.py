"""The Run screen's parts: broker columns, the summary row, the header and the event log."""
