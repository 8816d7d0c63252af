/**
 * Largest live-feed message, as the dashboard sends it and the page accepts it: a hello or sync
 * carries every device at once (what the page sends back is bounded separately, to 4 KiB).
 */
export const MAX_FEED_MESSAGE_BYTES = 256 * 1024 * 1024;
