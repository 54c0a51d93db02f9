/**
 * Server-side request forgery guard: a webhook URL must be http(s) and resolve only to public addresses,
 * unless configuration allows private ones (WEBHOOK_ALLOW_PRIVATE) or names the host (WEBHOOK_ALLOW_HOSTS).
 * Checked when a webhook is created and again before every delivery (DNS may change in between).
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { WebhookConfig } from '../config';

/** Loopback, private, link-local, carrier-grade NAT, unspecified, multicast and reserved ranges. */
const BLOCKED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  BLOCKED.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  BLOCKED.addSubnet(net, bits, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1], 'ipv4');
  return BLOCKED.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** Why the URL may not be called, or null when it may. */
export async function refusedUrl(raw: string, config: WebhookConfig): Promise<string | null> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url must be an absolute http or https URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'url must use http or https';
  if (url.username || url.password) return 'url must not contain credentials';
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (config.allowPrivate || config.allowHosts.includes(host)) return null;
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return `url's host ${host} does not resolve`;
  }
  const blocked = addresses.find(isPrivateAddress);
  return blocked
    ? `url resolves to a private, loopback or reserved address (${blocked}); allow it with WEBHOOK_ALLOW_PRIVATE or WEBHOOK_ALLOW_HOSTS`
    : null;
}
