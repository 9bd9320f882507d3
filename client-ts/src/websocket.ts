/** The WebSocket implementation: the global one (browsers, Node >= 22) or the `ws` package. */

/** The part of the WHATWG WebSocket API that both implementations share. */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  /** Bytes queued by send() and not yet written (speech streaming waits on it). */
  readonly bufferedAmount?: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (event: { message?: string; error?: unknown }) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export const WS_OPEN = 1;

let cached: WebSocketConstructor | undefined;

export async function webSocketConstructor(): Promise<WebSocketConstructor> {
  if (cached !== undefined) return cached;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global !== undefined) {
    cached = global;
  } else {
    const mod = await import("ws");
    cached = mod.WebSocket as unknown as WebSocketConstructor;
  }
  return cached;
}
