"""The analyses of a store's orders: retention, repurchase, the repurchase curve and the magic
number, lifecycle, RFM, the wake-up list and the overview."""
