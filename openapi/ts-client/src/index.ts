// A thin wrapper around openapi-fetch: every path, parameter, body and
// response type comes from schema.ts, generated from ../openapi.json.
import createClient, { mergeHeaders, type Client, type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";
/** Every request and response body of the API, by schema name (e.g. `Schemas["ProjectBody"]`). */
export type Schemas = components["schemas"];
/** The body of every error response: `{ "error": "..." }`. */
export type ErrorBody = Schemas["ErrorBody"];
export type ExpoUpdatesClient = Client<paths>;

export interface ExpoUpdatesClientOptions extends Omit<ClientOptions, "baseUrl"> {
  /** A session token (from register or login) or a project API key (`eus_...`), sent as `Authorization: Bearer`. */
  token?: string;
}

/** A typed client for the server at `baseUrl`, e.g. `https://updates.example.com`. */
export function createExpoUpdatesClient(
  baseUrl: string,
  { token, headers, ...options }: ExpoUpdatesClientOptions = {},
): ExpoUpdatesClient {
  return createClient<paths>({
    ...options,
    baseUrl,
    headers: token === undefined ? headers : mergeHeaders(headers, { Authorization: `Bearer ${token}` }),
  });
}
