"""The ``metaplex`` standard: a classic SPL Token mint with Metaplex Token Metadata (system wallet
as verified creator and update authority) and a master edition that takes over the mint and
freeze authorities, so no second token can exist.

The Token Metadata program is not available on the local chain: these plans are proven by the
codec's byte-exact tests and by decoding real mainnet accounts, not by execution here.
"""

from __future__ import annotations

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from chain.asset import metaplex_name
from chain.codecs import ata, metaplex, spl_token
from chain.codecs.metaplex import Collection, CollectionDetails, Creator, DataV2
from chain.programs import TOKEN_PROGRAM
from chain.standards.base import (
    AssetStandard,
    CollectionRequest,
    MintRequest,
    Plan,
    required_signers,
)
from core.types import StandardName

TITLE_PREFIX = "AIW3 "


class MetaplexStandard(AssetStandard):
    name = StandardName.METAPLEX
    token_program = TOKEN_PROGRAM

    def _mint_one(
        self, system: Pubkey, owner: Pubkey, mint: Pubkey, data: DataV2, *, is_collection: bool
    ) -> list[Instruction]:
        account = ata.address(owner, mint, TOKEN_PROGRAM)
        metadata = metaplex.metadata_pda(mint)
        return [
            create_account(
                CreateAccountParams(
                    from_pubkey=system,
                    to_pubkey=mint,
                    lamports=self._rent(spl_token.MINT_SIZE),
                    space=spl_token.MINT_SIZE,
                    owner=TOKEN_PROGRAM,
                )
            ),
            # Freeze authority = mint authority: the master edition takes over both.
            spl_token.encode(spl_token.InitializeMint2(TOKEN_PROGRAM, mint, 0, system, system)),
            ata.create(system, owner, mint, TOKEN_PROGRAM),
            spl_token.encode(spl_token.MintToChecked(TOKEN_PROGRAM, mint, account, system, 1, 0)),
            metaplex.encode(
                metaplex.CreateMetadataAccountV3(
                    metadata=metadata,
                    mint=mint,
                    mint_authority=system,
                    payer=system,
                    update_authority=system,
                    update_authority_is_signer=True,
                    data=data,
                    is_mutable=True,
                    collection_details=CollectionDetails(0, 0) if is_collection else None,
                )
            ),
            # max_supply 0: no prints; the edition becomes mint authority, so supply stays 1.
            metaplex.encode(
                metaplex.CreateMasterEditionV3(
                    edition=metaplex.master_edition_pda(mint),
                    mint=mint,
                    update_authority=system,
                    mint_authority=system,
                    payer=system,
                    metadata=metadata,
                    max_supply=0,
                )
            ),
        ]

    def mint_plan(
        self,
        *,
        system: Pubkey,
        owner: Pubkey,
        mint: Pubkey,
        request: MintRequest,
        collection: Pubkey | None = None,
    ) -> Plan:
        data = DataV2(
            name=metaplex_name(TITLE_PREFIX + request.display_title(), request.level),
            symbol=request.symbol,
            uri=request.uri,
            seller_fee_basis_points=0,
            # The update authority signs CreateMetadataAccountV3, so it is verified at once.
            creators=(Creator(system, True, 100),),
            collection=Collection(False, collection) if collection else None,
        )
        ixs = self._mint_one(system, owner, mint, data, is_collection=False)
        if collection is not None:
            ixs.append(
                metaplex.encode(
                    metaplex.VerifySizedCollectionItem(
                        metadata=metaplex.metadata_pda(mint),
                        collection_authority=system,
                        payer=system,
                        collection_mint=collection,
                        collection_metadata=metaplex.metadata_pda(collection),
                        collection_master_edition=metaplex.master_edition_pda(collection),
                    )
                )
            )
        return Plan(tuple(ixs), system, required_signers(system, mint)).check_size()

    def burn_plan(
        self,
        *,
        owner: Pubkey,
        mint: Pubkey,
        fee_payer: Pubkey | None = None,
        collection: Pubkey | None = None,
        token_account: Pubkey | None = None,
    ) -> Plan:
        payer = fee_payer or owner
        ix = metaplex.encode(
            metaplex.BurnNft(
                metadata=metaplex.metadata_pda(mint),
                owner=owner,
                mint=mint,
                token_account=token_account or ata.address(owner, mint, TOKEN_PROGRAM),
                master_edition=metaplex.master_edition_pda(mint),
                # A verified member of a sized collection must name it so its size drops.
                collection_metadata=metaplex.metadata_pda(collection) if collection else None,
            )
        )
        return Plan((ix,), payer, required_signers(payer, owner))

    def collection_plan(
        self, *, system: Pubkey, collection_mint: Pubkey, request: CollectionRequest
    ) -> Plan:
        data = DataV2(request.name, request.symbol, request.uri, 0, (Creator(system, True, 100),))
        ixs = self._mint_one(system, system, collection_mint, data, is_collection=True)
        return Plan(tuple(ixs), system, required_signers(system, collection_mint)).check_size()

    def related_addresses(self, mint: Pubkey) -> tuple[Pubkey, ...]:
        return (mint, metaplex.metadata_pda(mint), metaplex.master_edition_pda(mint))
