// Starts Swagger UI on the API reference page (/api/docs). A file of its own, not an inline
// script: the page's Content-Security-Policy allows scripts from the gateway only.
//
// - The document is the gateway's own /api/openapi.json (relative, so the page works behind any
//   host name); its servers entry is "/", so "Try it out" calls this same gateway.
// - "Authorize" offers the bearer token and the OAuth2 password flow, which posts the login form
//   to /api/auth/token. The token is kept in memory only (persistAuthorization stays off: no token
//   in localStorage).
// - validatorUrl null: Swagger UI would otherwise load a badge from an outside validator.
"use strict";

window.ui = window.SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  tryItOutEnabled: true,
  displayRequestDuration: true,
  persistAuthorization: false,
  validatorUrl: null,
});
