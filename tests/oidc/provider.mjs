// A real OpenID provider for the sign-in tests: the npm package oidc-provider on loopback.
//
// Configuration comes from the JSON file named by OIDC_CONFIG (written by tests/oidcserver.py):
//   port, clients (OIDC client metadata), accounts (username -> {name, email, roles}),
//   client_roles (client id -> roles, for client-credentials API tokens), api_audience,
//   jwks (private JWKs; the first of each type signs, the rest still verify: key rotation).
// It prints one line "ready <issuer>" once it listens. Sign-in uses the package's own
// development login page (any username; the accounts table gives its claims), and consent is
// granted automatically, as an organisation's provider does for its own applications.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.env.OIDC_CONFIG, 'utf8'));
const issuer = `http://127.0.0.1:${cfg.port}`;
const SCOPES = 'openid profile email roles';

function account(id) {
  const a = cfg.accounts[id];
  if (!a) return undefined;
  return {
    accountId: id,
    async claims() {
      return { sub: id, name: a.name, email: a.email, preferred_username: id, roles: a.roles };
    },
  };
}

const provider = new Provider(issuer, {
  clients: cfg.clients,
  jwks: cfg.jwks,
  cookies: { keys: ['dsar-test-provider-cookie-key'] },
  findAccount: (ctx, id) => account(id),
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'], roles: ['roles'] },
  conformIdTokenClaims: false, // the roles claim rides in the ID token, as the console reads it
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client.grantTypes.includes('client_credentials') ? cfg.api_audience : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'dsar',
        audience: cfg.api_audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: cfg.api_alg || 'ES256' } },
      }),
    },
  },
  async extraTokenClaims(ctx, token) {
    if (token.accountId) return { roles: cfg.accounts[token.accountId]?.roles ?? [] };
    return { roles: cfg.client_roles?.[token.clientId] ?? [] };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(SCOPES);
    grant.addOIDCClaims(['roles']);
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(cfg.port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
