"""OidcIssuer: the state and rules of the local issuer (directory, keys, tokens, the two grants)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.serving import serve_in_thread, stop_serving

from .model import (
    API_SCOPE,
    CLAIMS_SUPPORTED,
    DEFAULT_API_APP_ID_URI,
    DEFAULT_API_CLIENT_ID,
    DEFAULT_SPA_CLIENT_ID,
    DEFAULT_SPA_REDIRECT_URIS,
    DEFAULT_TENANT_ID,
    LOOPBACK_HOSTS,
    OIDC_SCOPES,
    PKCE_VERIFIER,
    App,
    Grant,
    OAuthError,
    Person,
    PublicClient,
    SigningKey,
    b64url,
    demo_people,
    digest,
    guid,
    origin_of,
    pairwise_sub,
    redirect_url,
    thumbprint,
)
from .server import IssuerHTTPServer


class OidcIssuer:
    """A loopback OpenID Connect issuer with Entra ID's v2 endpoint shapes.

    >>> with OidcIssuer() as issuer:
    ...     token = issuer.mint(issuer.people[0])
    ...     env = issuer.identity_env()  # JIT_AUTH_* settings that make the app trust this issuer
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        api_client_id: str = DEFAULT_API_CLIENT_ID,
        api_app_id_uri: str = DEFAULT_API_APP_ID_URI,
        spa_client_id: str = DEFAULT_SPA_CLIENT_ID,
        spa_redirect_uris: Iterable[str] = DEFAULT_SPA_REDIRECT_URIS,
        people: Iterable[Person] | None = None,
        token_lifetime: timedelta = timedelta(hours=1),
        code_lifetime: timedelta = timedelta(minutes=5),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the local issuer listens on loopback only, not {host!r}")
        self.host = host
        self._requested_port = port
        self.tenant_id = guid(tenant_id)
        self.api_client_id = guid(api_client_id)
        self.api_app_id_uri = api_app_id_uri
        self.spa_client_id = guid(spa_client_id)
        self.token_lifetime = token_lifetime
        self.code_lifetime = code_lifetime
        self.clock = clock
        self.requests: Counter[str] = Counter()  # by endpoint: discovery, keys, authorize, token, logout
        self._lock = threading.RLock()
        self._tenants: set[str] = {self.tenant_id}
        self._people: dict[str, Person] = {}
        self._apps: dict[str, App] = {}
        self._clients: dict[str, PublicClient] = {}
        self._grants: dict[str, Grant] = {}
        self._redeemed: set[str] = set()
        self._keys: list[SigningKey] = []
        self._server: IssuerHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.rotate_keys()
        self.register_spa(self.spa_client_id, spa_redirect_uris, name="JIT admin portal")
        for person in demo_people(self.tenant_id) if people is None else people:
            self._add(person)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> OidcIssuer:
        if self._server is not None:
            return self
        server = IssuerHTTPServer((self.host, self._requested_port), self)
        self._server = server
        self._thread = serve_in_thread(server, "oidc-issuer")
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        stop_serving(server, thread)

    def __enter__(self) -> OidcIssuer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the issuer is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def authority(self) -> str:
        """What JIT_AUTH_AUTHORITY is set to for the app to trust this issuer."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def issuer_for(self, tenant_id: str | None = None) -> str:
        return f"{self.authority}/{tenant_id or self.tenant_id}/v2.0"

    def discovery_url(self, tenant_id: str | None = None) -> str:
        return f"{self.issuer_for(tenant_id)}/.well-known/openid-configuration"

    def jwks_uri(self, tenant_id: str | None = None) -> str:
        return f"{self.authority}/{tenant_id or self.tenant_id}/discovery/v2.0/keys"

    def authorization_endpoint(self, tenant_id: str | None = None) -> str:
        return f"{self.authority}/{tenant_id or self.tenant_id}/oauth2/v2.0/authorize"

    def token_endpoint(self, tenant_id: str | None = None) -> str:
        return f"{self.authority}/{tenant_id or self.tenant_id}/oauth2/v2.0/token"

    def identity_env(self) -> dict[str, str]:
        """The JIT_AUTH_* app settings under which jit.identity accepts this issuer's tokens (and only them)."""
        return {
            "JIT_AUTH_CLIENT_ID": self.api_client_id,
            "JIT_AUTH_AUDIENCES": self.api_app_id_uri,
            "JIT_AUTH_TENANT_IDS": self.tenant_id,
            "JIT_AUTH_AUTHORITY": self.authority,
        }

    @property
    def api_scope(self) -> str:
        """The scope an SPA asks for: `{Application ID URI}/access_as_user`."""
        return f"{self.api_app_id_uri}/{API_SCOPE}"

    # -- directory ------------------------------------------------------------

    @property
    def people(self) -> list[Person]:
        with self._lock:
            return list(self._people.values())

    def person(self, object_id: str) -> Person:
        with self._lock:
            return self._people[object_id.lower()]

    def add_tenant(self, tenant_id: str) -> str:
        tid = guid(tenant_id)
        with self._lock:
            self._tenants.add(tid)
        return tid

    def add_person(
        self,
        name: str,
        preferred_username: str,
        roles: Iterable[str] = (),
        *,
        object_id: str | None = None,
        tenant_id: str | None = None,
    ) -> Person:
        person = Person(
            object_id=guid(object_id or str(uuid.uuid4())),
            name=name,
            preferred_username=preferred_username,
            roles=tuple(roles),
            tenant_id=guid(tenant_id or self.tenant_id),
        )
        return self._add(person)

    def add_app(
        self,
        name: str,
        roles: Iterable[str] = (),
        *,
        client_id: str | None = None,
        object_id: str | None = None,
        tenant_id: str | None = None,
    ) -> App:
        """A confidential client; its generated `secret` is what the client credentials grant checks."""
        app = App(
            client_id=guid(client_id or str(uuid.uuid4())),
            object_id=guid(object_id or str(uuid.uuid4())),
            name=name,
            roles=tuple(roles),
            tenant_id=guid(tenant_id or self.tenant_id),
            secret=secrets.token_urlsafe(32),
        )
        with self._lock:
            self._tenants.add(app.tenant_id)
            self._apps[app.client_id] = app
        return app

    def register_spa(self, client_id: str, redirect_uris: Iterable[str], *, name: str = "single-page app") -> None:
        """A public client (SPA platform): the authorization code flow with PKCE, loopback redirect URIs only."""
        uris = tuple(redirect_uris)
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS or parts.fragment:
                raise ValueError(f"redirect URIs must be loopback http(s) URLs without a fragment, not {uri!r}")
        with self._lock:
            self._clients[guid(client_id)] = PublicClient(guid(client_id), name, uris)

    def _add(self, person: Person) -> Person:
        with self._lock:
            self._tenants.add(person.tenant_id)
            self._people[person.object_id] = person
        return person

    # -- keys -------------------------------------------------------------------

    @staticmethod
    def new_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def rotate_keys(self, *, retire_previous: bool = False) -> str:
        """Sign with a new key from now on, published first; the previous keys stay published unless retired."""
        key = SigningKey(thumbprint(private := self.new_key()), private)
        with self._lock:
            self._keys = [key] if retire_previous else [key, *self._keys]
        return key.kid

    @property
    def signing_kid(self) -> str:
        with self._lock:
            return self._keys[0].kid

    def jwks(self, tenant_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            keys = list(self._keys)
        return {"keys": [key.jwk(self.issuer_for(tenant_id)) for key in keys]}

    # -- tokens -------------------------------------------------------------------

    def mint(
        self,
        subject: Person | App,
        *,
        roles: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        audience: str | None = None,
        tenant_id: str | None = None,
        client_id: str | None = None,
        issued_at: datetime | None = None,
        not_before: datetime | None = None,
        lifetime: timedelta | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        remove_claims: Iterable[str] = (),
        sign_with: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        """A signed v2.0 access token for the API, as Entra would issue it to `subject`.

        Defaults: the subject's roles and tenant, `scp` access_as_user for a person (none for an app), the API's client
        id as audience, now, the issuer's token lifetime, its current key. For negative tests: `extra_claims` override
        anything (`iss`, `ver`, …), `remove_claims` drop claims, `sign_with` signs with another key (named by its own
        thumbprint unless `kid` says otherwise: a foreign key under our `kid` is a forged signature).
        """
        now = issued_at.timestamp() if issued_at else self.clock()
        start = not_before.timestamp() if not_before else now
        tid = tenant_id or subject.tenant_id
        claims: dict[str, Any] = {
            "aud": audience or self.api_client_id,
            "iss": self.issuer_for(tid),
            "iat": int(now),
            "nbf": int(start),
            "exp": int(start + (lifetime or self.token_lifetime).total_seconds()),
            "oid": subject.object_id,
            "tid": tid,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        granted = tuple(subject.roles if roles is None else roles)
        if granted:
            claims["roles"] = list(granted)  # Entra leaves the claim out when nothing is assigned
        if isinstance(subject, App):
            claims.update(azp=client_id or subject.client_id, azpacr="1", idtyp="app", sub=subject.object_id)
        else:
            azp = client_id or self.spa_client_id
            claims.update(
                azp=azp,
                azpacr="0",
                name=subject.name,
                preferred_username=subject.preferred_username,
                scp=" ".join((API_SCOPE,) if scopes is None else scopes),
                sub=pairwise_sub(subject.object_id, azp),
            )
            if not claims["scp"]:
                del claims["scp"]
        claims.update(extra_claims or {})
        for name in remove_claims:
            claims.pop(name, None)
        return self._sign(claims, sign_with=sign_with, kid=kid)

    def _id_token(self, person: Person, client_id: str, nonce: str | None) -> str:
        now = self.clock()
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.issuer_for(person.tenant_id),
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.token_lifetime.total_seconds()),
            "name": person.name,
            "oid": person.object_id,
            "preferred_username": person.preferred_username,
            "sub": pairwise_sub(person.object_id, client_id),
            "tid": person.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def _sign(self, claims: Mapping[str, Any], *, sign_with: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> str:
        if sign_with is None:
            with self._lock:
                key = self._keys[0]
            private, key_id = key.private, kid or key.kid
        else:
            private, key_id = sign_with, kid or thumbprint(sign_with)
        return jwt.encode(dict(claims), private, algorithm="RS256", headers={"kid": key_id, "typ": "JWT"})

    # -- protocol ---------------------------------------------------------------

    def discovery(self, tenant_id: str) -> dict[str, Any]:
        base = f"{self.authority}/{tenant_id}"
        return {
            "issuer": self.issuer_for(tenant_id),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": self.jwks_uri(tenant_id),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": list(CLAIMS_SUPPORTED),
            "request_uri_parameter_supported": False,
            "tenant_region_scope": None,
        }

    def check_authorization(self, params: Mapping[str, str]) -> tuple[PublicClient, str]:
        """Client and redirect URI first: when either is wrong the error is shown, never redirected (RFC 6749 4.1.2.1)."""
        client_id = params.get("client_id", "").lower()
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            raise OAuthError(
                "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found in the directory."
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise OAuthError("invalid_request", 900971, "No reply address provided.")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured "
                f"for the application '{client_id}'.",
            )
        return client, redirect_uri

    def check_authorization_request(self, params: Mapping[str, str]) -> tuple[str, ...]:
        """The rest of an authorization request; errors here go back to the redirect URI. Returns the API scopes."""
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", 70005, "The app returned an unsupported response type.")
        if params.get("response_mode", "query") not in ("query", "fragment"):
            raise OAuthError("invalid_request", 70007, "The app returned an unsupported value of response_mode.")
        if not params.get("code_challenge"):
            raise OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'code_challenge'."
            )
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", 501491, "Invalid code_challenge_method: this issuer accepts S256 only.")
        if not 43 <= len(params["code_challenge"]) <= 128:
            raise OAuthError("invalid_request", 50147, "The size of the code challenge parameter is not valid.")
        return self._api_scopes(params.get("scope", ""))

    def authorize(self, tenant_id: str, params: Mapping[str, str], person_id: str) -> str:
        """Issue a code for the person chosen; the URL to send the browser to."""
        client, redirect_uri = self.check_authorization(params)
        scopes = self.check_authorization_request(params)
        with self._lock:
            person = self._people.get(person_id.lower())
        if person is None or person.tenant_id != tenant_id:
            raise OAuthError("invalid_request", 50034, "The user account does not exist in the directory.")
        code = secrets.token_urlsafe(48)
        grant = Grant(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"],
            person=person,
            scopes=scopes,
            nonce=params.get("nonce") or None,
            expires_at=self.clock() + self.code_lifetime.total_seconds(),
        )
        with self._lock:
            self._grants[digest(code)] = grant
        return redirect_url(redirect_uri, params, {"code": code})

    def token(self, tenant_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self._redeem_code(tenant_id, form)
        if grant_type == "client_credentials":
            return self._client_credentials(tenant_id, form)
        if not grant_type:
            raise OAuthError("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
        raise OAuthError("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")

    def _redeem_code(self, tenant_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        for name in ("client_id", "code", "redirect_uri", "code_verifier"):
            if not form.get(name):
                raise OAuthError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")
        if form.get("client_secret") or form.get("client_assertion"):
            raise OAuthError(
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
        code_hash = digest(form["code"])
        with self._lock:
            # Any attempt uses the code up: one guess at the verifier, not as many as an attacker likes.
            grant = self._grants.pop(code_hash, None)
            reused = grant is None and code_hash in self._redeemed
            self._redeemed.add(code_hash)
        if reused:
            raise OAuthError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh "
                "token.",
            )
        if grant is None:
            raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the code is not valid.")
        if grant.person.tenant_id != tenant_id:
            raise OAuthError(
                "invalid_grant", 700005, "Provided Authorization Code is intended to use against other tenant, thus rejected."
            )
        if self.clock() > grant.expires_at:
            raise OAuthError("invalid_grant", 70008, "The provided authorization code or refresh token has expired.")
        if form["client_id"].lower() != grant.client_id:
            raise OAuthError("invalid_grant", 70000, "The code was issued to another client.")
        if form["redirect_uri"] != grant.redirect_uri:
            raise OAuthError("invalid_grant", 50011, "The redirect URI does not match the one the code was issued for.")
        verifier = form["code_verifier"]
        if not PKCE_VERIFIER.match(verifier) or not hmac.compare_digest(
            b64url(hashlib.sha256(verifier.encode()).digest()), grant.code_challenge
        ):
            raise OAuthError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        access_token = self.mint(grant.person, scopes=grant.scopes, client_id=grant.client_id)
        return {
            "token_type": "Bearer",
            "scope": " ".join(f"{self.api_app_id_uri}/{s}" for s in grant.scopes),
            "expires_in": int(self.token_lifetime.total_seconds()),
            "ext_expires_in": int(self.token_lifetime.total_seconds()),
            "access_token": access_token,
            "id_token": self._id_token(grant.person, grant.client_id, grant.nonce),
        }

    def _client_credentials(self, tenant_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        for name in ("client_id", "scope"):
            if not form.get(name):
                raise OAuthError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")
        with self._lock:
            app = self._apps.get(form["client_id"].lower())
        if app is None or app.tenant_id != tenant_id:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{form['client_id']}' was not found in the directory.",
            )
        secret = form.get("client_secret", "")
        if not secret:
            raise OAuthError(
                "invalid_request",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not hmac.compare_digest(secret.encode(), app.secret.encode()):
            raise OAuthError("invalid_client", 7000215, "Invalid client secret provided.", status=401)
        if form["scope"] not in (
            f"{self.api_app_id_uri}/.default",
            f"{self.api_client_id}/.default",
            f"api://{self.api_client_id}/.default",
        ):
            raise OAuthError(
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid: use '{self.api_app_id_uri}/.default'.",
            )
        return {
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime.total_seconds()),
            "ext_expires_in": int(self.token_lifetime.total_seconds()),
            "access_token": self.mint(app),
        }

    def _api_scopes(self, scope: str) -> tuple[str, ...]:
        prefixes = (f"{self.api_app_id_uri}/", f"api://{self.api_client_id}/", f"{self.api_client_id}/")
        api: list[str] = []
        for requested in scope.split():
            if requested in OIDC_SCOPES:
                continue
            name = next((requested[len(p) :] for p in prefixes if requested.startswith(p)), None)
            if name != API_SCOPE:
                raise OAuthError(
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not valid. The scope {requested} is not valid.",
                )
            api.append(name)
        if not api:
            raise OAuthError("invalid_scope", 70011, f"The scope must include the API's scope, such as {self.api_scope}.")
        return tuple(dict.fromkeys(api))

    def cors_origin(self, origin: str | None) -> str | None:
        """An SPA's origin may redeem codes from the browser, as Entra allows for SPA redirect URIs."""
        if not origin:
            return None
        with self._lock:
            allowed = set().union(*(client.origins for client in self._clients.values()))
        return origin if origin in allowed else None

    def logout_target(self, params: Mapping[str, str]) -> str | None:
        target = params.get("post_logout_redirect_uri", "")
        return target if target and self.cors_origin(origin_of(target)) else None

    def count(self, endpoint: str) -> None:
        with self._lock:
            self.requests[endpoint] += 1

    def knows_tenant(self, tenant_id: str) -> bool:
        with self._lock:
            return tenant_id in self._tenants
