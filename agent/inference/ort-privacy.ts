/**
 * onnxruntime 1.29+ on Linux and macOS sends Microsoft telemetry (1DS: process, session, model,
 * execution-provider and runtime-performance events, to mobile.events.data.microsoft.com) and,
 * even offline, writes a persistent device id and a growing event store under
 * $HOME/.cache/Microsoft/DeveloperTools/.onnxruntime. On a gateway that is /var/lib/edge-agent, the
 * SD card (the service user's home): flash wear outside the store's budget, and a third party's
 * identifier and usage report from a device whose data its operator sells. ORT_DISABLE_TELEMETRY=1,
 * set before onnxruntime initialises, stops all of it (microsoft/onnxruntime#27379): no uploader,
 * no events, no device id, no offline store.
 *
 * Import this module before onnxruntime-node. An operator who sets ORT_DISABLE_TELEMETRY to
 * something else has chosen, and is left alone.
 */
export const ORT_TELEMETRY_OPT_OUT = 'ORT_DISABLE_TELEMETRY';

process.env[ORT_TELEMETRY_OPT_OUT] ??= '1';
