# A stand-in for an update server's HTTP API, on 127.0.0.1 (tests/cmd/export_servers.sh,
# export_signed.sh): it answers each request from a route table and appends what it received to
# a JSON-lines file. Usage: python3 export_listener.py ROUTES.json CAPTURED.jsonl; it prints its
# port. ROUTES: [{"method": "POST", "path": "/a/b", "code": 201, "body": "..."}], the path
# without the query; "{port}" in a body becomes the listener's port; an unknown route gets 404.
import http.server, json, sys

routes = json.load(open(sys.argv[1]))
out = sys.argv[2]


class H(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with open(out, "ab") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body.hex()}).encode() + b"\n")
        path = self.path.split("?", 1)[0]
        code, text = 404, b"no route"
        for r in routes:
            if r["method"] == self.command and r["path"] == path:
                code = r["code"]
                text = r["body"].replace("{port}", str(self.server.server_address[1])).encode()
                if code in (301, 302):
                    self.send_response(code)
                    self.send_header("Location", "/login")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
        self.send_response(code)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_POST = do_PUT = do_GET = handle_any

    def log_message(self, *a):
        pass


s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
