// Computes root CIDs with the JS ipfs-unixfs-importer, an implementation independent of ours.
// stdin: a JSON list of {path, cidVersion, chunkSize, maxLinks}; stdout: a JSON list of CIDs.
import { createReadStream } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'

let input = ''
for await (const part of process.stdin) input += part
const cids = []
for (const job of JSON.parse(input)) {
  const options = {
    cidVersion: job.cidVersion,
    rawLeaves: job.cidVersion === 1, // kubo: raw leaves with CIDv1, dag-pb leaves with v0
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: job.chunkSize }),
    layout: balanced({ maxChildrenPerNode: job.maxLinks })
  }
  let root
  for await (const entry of importer([{ content: createReadStream(job.path) }], new MemoryBlockstore(), options)) {
    root = entry.cid.toString()
  }
  cids.push(root)
}
process.stdout.write(JSON.stringify(cids))
