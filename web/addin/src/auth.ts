// Sign-in: Nested App Authentication (NAA) with MSAL. Outlook hands the
// pane a token for the gateway's API without a sign-in page of its own.
// MSAL is loaded only when a client id is configured (a separate chunk),
// so a gateway without Entra ID sign-in never downloads it.

import type { IPublicClientApplication } from "@azure/msal-browser";
import { APIError } from "./api";

/** The pane's settings, written into taskpane.html by the gateway. */
export interface Config {
  clientId: string;
  authority: string;
  scope: string;
  chatUrl: string;
  /** The gateway answers presence without a token. */
  anonymous: boolean;
}

export class Auth {
  private pca?: Promise<IPublicClientApplication>;
  /** Set when the host cannot give tokens and the pane asks without one. */
  notice = "";

  constructor(
    private cfg: Config,
    private naaSupported: () => boolean,
  ) {}

  /**
   * token returns a bearer token for the API, or undefined where the
   * gateway answers anonymously and no sign-in is configured or possible.
   * It throws an APIError with a message for the user when neither works.
   */
  async token(forceRefresh: boolean): Promise<string | undefined> {
    if (!this.cfg.clientId) return undefined;
    if (!this.naaSupported()) {
      const msg =
        "This version of Outlook cannot sign add-ins in (Nested App Authentication is not supported). " +
        "Use Outlook on the web, the new Outlook for Windows, or update classic Outlook.";
      if (this.cfg.anonymous) {
        this.notice = msg + " Showing presence without signing in.";
        return undefined;
      }
      throw new APIError(msg, 0, "no_naa");
    }
    const msal = await import("@azure/msal-browser");
    this.pca ??= msal.createNestablePublicClientApplication({
      auth: { clientId: this.cfg.clientId, authority: this.cfg.authority },
      // Tokens stay in this page's memory: nothing for another script on
      // the gateway's origin to read back later; the host's broker hands
      // out a new one silently after a reload.
      cache: { cacheLocation: "memoryStorage" },
    });
    const pca = await this.pca;
    const request = { scopes: [this.cfg.scope] };
    try {
      const r = await pca.acquireTokenSilent({ ...request, forceRefresh });
      return r.accessToken;
    } catch (e) {
      if (!(e instanceof msal.InteractionRequiredAuthError)) throw signInFailed(e);
    }
    try {
      const r = await pca.acquireTokenPopup(request);
      return r.accessToken;
    } catch (e) {
      throw signInFailed(e);
    }
  }
}

/** signInFailed is the error MSAL's failure e is shown to the user as. */
function signInFailed(e: unknown): APIError {
  return new APIError("Signing in failed: " + (e instanceof Error ? e.message : String(e)), 0, "auth");
}
