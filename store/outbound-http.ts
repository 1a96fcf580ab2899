import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { addressProblem } from '../domain/webhooks.js';

/**
 * Resolves the host and refuses a loopback, link-local, private or metadata address before
 * connecting (a name that resolves there, or is re-pointed there later, is caught here). Used by
 * every request the platform sends to an address a user gave: webhooks, tracker APIs.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return (callback as (e: Error | null, a: string, f?: number) => void)(err, '', undefined);
      const list = addresses as dns.LookupAddress[];
      for (const a of list) {
        const problem = addressProblem(a.address, allowPrivate);
        if (problem) return (callback as (e: Error | null, a: string, f?: number) => void)(new Error(`${hostname} resolves to ${problem}`), '', undefined);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      return (callback as (e: null, a: string, f: number) => void)(null, list[0]!.address, list[0]!.family);
    });
  };
}
