"""The operators' console and the JSON API of reference/http.md, served by the daemon.

- app.py: `create_app(ops, auth, settings)`, the ASGI app, its error mapping and /healthz;
- auth.py: session cookies, bearer tokens, CSRF; the `api_actor` / `page_actor` dependencies;
- bodies.py: request bodies bounded in size and type before anything reads them;
- api.py: the /api paths; sse.py: /api/events; pages.py: sign-in, sign-out, pages;
- server.py: `HttpServer`, uvicorn as one task of the daemon's TaskGroup;
- templates/, static/: Jinja2 templates and the assets, shipped in the package.

Every route calls linectl.ops (rights, validation, journal); none reaches into the site.
"""
