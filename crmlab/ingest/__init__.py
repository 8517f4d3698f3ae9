"""Reading a store's exports: values, screening, the ledger, the readers."""
