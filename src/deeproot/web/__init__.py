"""`deeproot serve`: the diagnosis service over HTTP, a thin layer over the library.

Pages (server-rendered Jinja2, no front-end build) and a JSON API, both calling `diagnose()`,
`recommend()` and `catalog.product.product()`; the web layer adds only HTTP: upload limits, one
diagnosis at a time per worker with a bounded queue, security headers, Korean/English pages.
`create_app(settings)` builds the ASGI app; `deeproot.cli.serve` runs it on uvicorn.
"""
