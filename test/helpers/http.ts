/**
 * fetch, once more when a kept-alive socket was closed by the server just as it was reused
 * (undici: "other side closed"): node's server drops idle keep-alive sockets after 5 s, and a
 * loaded machine makes that race common. Only for requests that may be repeated (GET, and POSTs
 * the receiver de-duplicates).
 */
export async function fetchRetry(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch {
    return await fetch(url, init);
  }
}
