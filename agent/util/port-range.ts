/** TCP/UDP ports are 1..65535 (RFC 6335 §6); a config or flag naming another is refused where it is read, not at run time. */
export const portInRange = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535;

/** The port written in a `scheme://host[:port][/...]` URL, or undefined when none is written. */
export function urlPort(url: string): number | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:\[[^\]]*\]|[^/:?#]*)(?::(\d*))?/i.exec(url);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** zod refine message helper: undefined when the URL's port (if any) is valid. */
export function urlPortProblem(url: string): string | undefined {
  const port = urlPort(url);
  return port === undefined || portInRange(port) ? undefined : `port ${port} is out of range 1..65535`;
}
