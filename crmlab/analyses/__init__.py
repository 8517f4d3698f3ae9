"""The analyses of a store's orders: retention, repurchase, lifecycle, RFM, magic number."""
