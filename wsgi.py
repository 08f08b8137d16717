import os

from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app

app = create_app()
if hops := int(os.environ.get("CUNGUAN_PROXY_HOPS", "0")):
    # Behind this many trusted reverse proxies: the client's address and scheme come from their X-Forwarded-*
    # headers (login throttling and logs see the client, not the proxy). Never set it without a proxy.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
