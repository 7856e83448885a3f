// The one gRPC-Web client of the page: Envoy's origin, `authorization: Bearer` on every call.

import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ExperimentService } from "../gen/weightslab/v1/experiment_pb.js";

export type Api = Client<typeof ExperimentService>;

export function createApi(baseUrl: string, token: () => string | null, timeoutMs = 20_000): Api {
  const auth: Interceptor = (next) => async (req) => {
    const t = token();
    if (t) req.header.set("authorization", `Bearer ${t}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({
    baseUrl,
    useBinaryFormat: true,
    interceptors: [auth],
    defaultTimeoutMs: timeoutMs,
  });
  return createClient(ExperimentService, transport);
}

export function errorCode(err: unknown): Code | undefined {
  if (err instanceof ConnectError) return err.code;
  return undefined;
}

/** A network failure (server down, proxy gone) rather than an answer. */
export function isNetworkError(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return err instanceof TypeError;
  if (err.code === Code.Unavailable) return true;
  if (err.code === Code.Unknown || err.code === Code.Internal) {
    return err.cause instanceof TypeError || /fetch|network|load failed|HTTP 50[234]/i.test(err.rawMessage);
  }
  return false;
}

/** Errors the scheduler backs off on: the server is busy or unreachable. */
export function isBackoffError(err: unknown): boolean {
  const code = errorCode(err);
  return code === Code.ResourceExhausted || code === Code.DeadlineExceeded || isNetworkError(err);
}

export function isUnauthenticated(err: unknown): boolean {
  return errorCode(err) === Code.Unauthenticated;
}

export function isAborted(err: unknown): boolean {
  return errorCode(err) === Code.Canceled || (err instanceof DOMException && err.name === "AbortError");
}

/** The server's own message (what a person should read), without the "[code]" prefix. */
export function errorText(err: unknown): string {
  if (err instanceof ConnectError) {
    const name = Code[err.code]?.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() ?? String(err.code);
    return err.rawMessage ? err.rawMessage : name;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

export { Code, ConnectError };
