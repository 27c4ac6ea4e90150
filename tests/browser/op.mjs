// A real OpenID Provider for the sign-in test: npm's oidc-provider (a certified
// implementation) with its development login (any login name, any password), serving one
// confidential client, the web face, with PKCE required.
//
//   node op.mjs <port> <client_id> <client_secret> <redirect_uri> [wrong-audience]
//
// With `wrong-audience` the provider is misconfigured on purpose: every ID token it issues
// to the web face names another client as its audience (what a token meant for another
// system looks like), so the test can show the web face refusing it. Prints `ready` once
// it serves.
import { createRequire } from "node:module";
const require = createRequire(process.env.OIDC_PROVIDER_DIR + "/");
const { default: Provider } = await import(require.resolve("oidc-provider"));

const [port, clientId, clientSecret, redirectUri, mode] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
    {
      client_id: "another-system",
      client_secret: "another-secret-of-some-length",
      redirect_uris: ["http://127.0.0.1:9/cb"],
    },
  ],
  // The account id is the login typed on the provider's page: the staff member's 工号.
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
  pkce: { required: () => true },
  cookies: { keys: ["op-test-cookie-key-0123456789abcdef"] },
});

if (mode === "wrong-audience") {
  const issue = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = async function (opts) {
    this.client = await provider.Client.find("another-system");
    return issue.call(this, opts);
  };
}

provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
