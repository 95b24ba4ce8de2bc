"""The site's operations, one layer for every door (MQTT, HTTP, command line).

- actor.py: who asks (`Actor`, `Role`) and what each role may do (`GRANTS`);
- errors.py: why an operation was not done (`Forbidden`, `Unknown`, `Conflict`, `Invalid`);
- operations.py: `Operations`, register, abort, duty, pause/resume and the reads, journalled;
- accounts.py: accounts, Argon2 hashes, bearer tokens (`AccountAdmin` for `linectl user`);
- auth.py: sign-in, console sessions and bearer tokens turned into an `Actor`.

Transports (linectl.upstream, linectl.http) depend on this package; it
depends on the site (linectl.site), never on a transport.
"""
