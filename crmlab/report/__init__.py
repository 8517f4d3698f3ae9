"""The report layer: notebook helpers, the HTML export, the papermill runner."""
