// Sign-in: the OpenID Connect authorization code flow with PKCE, driven by oidc-client-ts (its browser build is
// loaded before this module as the global `oidc`). Entra ID and the local issuer (devstack/oidc_issuer) look the
// same to it: an authority with a discovery document, an authorize endpoint and a token endpoint that answers the
// browser (CORS), so one code path serves both. MSAL.js could not: it refuses the local issuer's http authority.
//
// Tokens stay in sessionStorage (this tab, until it closes), never in localStorage, and are never logged. There is
// no silent renewal: Entra gives an SPA's refresh token only with offline_access, and the local issuer none; when
// the access token runs out the person signs in again (one click with Entra's session).

const PORTAL_PATH = "/portal/";

export class Auth {
  constructor(settings) {
    const { oidc } = window;
    if (!oidc) throw new Error("the sign-in library did not load (run scripts/build-portal)");
    oidc.Log.setLevel(oidc.Log.NONE);
    const store = new oidc.WebStorageStateStore({ store: window.sessionStorage });
    this.manager = new oidc.UserManager({
      authority: settings.authority,
      client_id: settings.clientId,
      redirect_uri: location.origin + PORTAL_PATH,
      post_logout_redirect_uri: location.origin + PORTAL_PATH,
      response_type: "code",
      response_mode: "query",
      scope: `openid profile ${settings.scope}`,
      userStore: store,
      stateStore: store,
      automaticSilentRenew: false,
      monitorSession: false,
      loadUserInfo: false,
      revokeTokensOnSignout: false,
    });
    this.user = null;
  }

  /** Finish a sign-in the authority sent back to this page, if it is one; the user (or null) afterwards. */
  async start() {
    const params = new URLSearchParams(location.search);
    if (params.has("state") && (params.has("code") || params.has("error"))) {
      let returnTo = "#/";
      try {
        const user = await this.manager.signinRedirectCallback();
        returnTo = (user.state && user.state.returnTo) || "#/";
      } finally {
        // The code and state leave the address bar (and the history) at once, whatever happened.
        history.replaceState(null, "", PORTAL_PATH + returnTo);
      }
    }
    const user = await this.manager.getUser();
    this.user = user && !user.expired ? user : null;
    return this.user;
  }

  signIn(returnTo = location.hash || "#/") {
    return this.manager.signinRedirect({ state: { returnTo } });
  }

  async signOut() {
    await this.manager.removeUser();
    this.user = null;
    try {
      await this.manager.signoutRedirect();
    } catch {
      location.assign(PORTAL_PATH);
    }
  }

  /** The access token for the API, or null once it has expired (the caller then asks the person to sign in). */
  async token() {
    if (!this.user || this.user.expired) return null;
    return this.user.access_token;
  }

  get secondsLeft() {
    return this.user ? this.user.expires_in : 0;
  }
}
