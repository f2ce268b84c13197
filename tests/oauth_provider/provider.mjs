// A real OAuth 2.1 authorization server for the tests: oidc-provider (OpenID-certified), set up
// the way an enterprise IdP in front of an MCP server is. Started by tests/oauth_provider/harness.py.
//
//   node provider.mjs PORT        issuer http://127.0.0.1:PORT
//
// - authorization_code + PKCE S256 required for every client; refresh tokens for every client
//   allowed the refresh_token grant (no offline_access dance);
// - Dynamic Client Registration (RFC 7591) open, and one pre-registered public client
//   "preregistered-client" (loopback redirect, any port: RFC 8252 §7.3);
// - resource indicators (RFC 8707): an access token is a JWT (RS256) whose aud is the resource
//   the client asked for, carrying only the scopes tools:read / tools:write it was granted;
// - a scripted interaction: GET /interaction/UID answers JSON {uid, prompt}; POST
//   /interaction/UID/login (form field login=NAME) signs NAME in; POST /interaction/UID/consent
//   grants what was asked. A test's HTTP client walks it like a user would the pages.
// Env: ACCESS_TOKEN_TTL (seconds, default 600).
// One JSON line per event on stdout: {"ready": issuer}, then {"event": "grant", "grant_type": ...}
// for each token issued, {"event": "registration"} for each DCR.
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const ttl = Number(process.env.ACCESS_TOKEN_TTL || 600);
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'preregistered-client',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        const url = new URL(resourceIndicator);
        if (!['https:', 'http:'].includes(url.protocol)) throw new errors.InvalidTarget();
        return {
          scope: 'tools:read tools:write',
          audience: resourceIndicator,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  scopes: ['openid', 'offline_access', 'tools:read', 'tools:write'],
  responseTypes: ['code'],
  pkce: { required: () => true },
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { AccessToken: ttl },
});
provider.proxy = false;
provider.on('grant.success', (ctx) => say({ event: 'grant', grant_type: ctx.oidc.params.grant_type }));
provider.on('registration_create.success', () => say({ event: 'registration' }));
provider.on('server_error', (ctx, err) => say({ event: 'server_error', message: String(err) }));

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

async function interaction(req, res, uid, step) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction uid mismatch');
  if (req.method === 'GET') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ uid, prompt: details.prompt.name, params: details.params }));
    return;
  }
  let result;
  if (step === 'login' && details.prompt.name === 'login') {
    const { login } = await readForm(req);
    if (!login) throw new Error('login needs a name');
    result = { login: { accountId: login } };
  } else if (step === 'consent' && details.prompt.name === 'consent') {
    const missing = details.prompt.details;
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    res.statusCode = 400;
    res.end(`step ${step} does not answer prompt ${details.prompt.name}`);
    return;
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const handler = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|consent))?$/.exec(req.url.split('?')[0]);
  if (!match) { handler(req, res); return; }
  interaction(req, res, match[1], match[2]).catch((err) => {
    res.statusCode = 400;
    res.end(String(err));
  });
});
server.listen(port, '127.0.0.1', () => say({ ready: issuer }));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
