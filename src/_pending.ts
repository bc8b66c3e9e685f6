// Temporary stand-ins until the zk and sse modules land.
export type ZkOptions = Record<string, never>;
export type SubscribeOptions = Record<string, never>;
export function isEncrypted(_v: Uint8Array): boolean {
  return false;
}
export class ZkCodec {
  constructor(_p: string, _o: ZkOptions) {}
  encrypt(v: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(v);
  }
  decrypt(v: Uint8Array, _key?: string): Promise<Uint8Array> {
    return Promise.resolve(v);
  }
  close(): void {}
}
