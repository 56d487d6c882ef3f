"""Voice conversion end to end: steps, index, output, batch, explorer data, end-to-end parity."""
