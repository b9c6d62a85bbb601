"""The ``token2022`` standard: a Token-2022 mint carrying its own metadata (MetadataPointer +
TokenMetadata with an additional ``level`` field) and, optionally, membership of a TokenGroup
collection mint. Runs end to end on the local chain."""

from __future__ import annotations

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from chain.codecs import ata, spl_token, token2022
from chain.codecs.spl_token import AuthorityType
from chain.codecs.token2022 import (
    GroupMemberPointer,
    GroupPointer,
    MetadataPointer,
    TokenGroup,
    TokenGroupMember,
    TokenMetadata,
)
from chain.programs import TOKEN_2022_PROGRAM
from chain.standards.base import (
    AssetStandard,
    CollectionRequest,
    MintRequest,
    Plan,
    required_signers,
)
from core.types import StandardName

TITLE_PREFIX = "AIW3 Equity NFT · "


def nft_name(request: MintRequest) -> str:
    return TITLE_PREFIX + request.display_title()


class Token2022Standard(AssetStandard):
    name = StandardName.TOKEN2022
    token_program = TOKEN_2022_PROGRAM

    def _create_mint(
        self,
        system: Pubkey,
        mint: Pubkey,
        fixed: list[token2022.Extension],
        grown: list[token2022.Extension],
    ) -> list[Instruction]:
        # Allocate only the fixed-size extensions: InitializeMint2 refuses an account sized for
        # extensions it has not seen yet. Metadata and group entries grow the account later, so
        # the lamports already cover the final size (as the program computes it: never 355).
        space = token2022.mint_size(fixed)
        return [
            create_account(
                CreateAccountParams(
                    from_pubkey=system,
                    to_pubkey=mint,
                    lamports=self._rent(token2022.mint_size([*fixed, *grown])),
                    space=space,
                    owner=TOKEN_2022_PROGRAM,
                )
            )
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
        name = nft_name(request)
        meta = TokenMetadata(
            system, mint, name, request.symbol, request.uri, (("level", request.level),)
        )
        fixed: list[token2022.Extension] = [MetadataPointer(system, mint)]
        grown: list[token2022.Extension] = [meta]
        if collection is not None:
            fixed.insert(0, GroupMemberPointer(system, mint))
            grown.append(TokenGroupMember(mint, collection, 0))
        ixs = self._create_mint(system, mint, fixed, grown)
        if collection is not None:
            ixs.append(token2022.encode(token2022.InitializeGroupMemberPointer(mint, system, mint)))
        ixs += [
            token2022.encode(token2022.InitializeMetadataPointer(mint, system, mint)),
            spl_token.encode(spl_token.InitializeMint2(TOKEN_2022_PROGRAM, mint, 0, system, None)),
            token2022.encode(
                token2022.MetadataInitialize(
                    mint, system, mint, system, name, request.symbol, request.uri
                )
            ),
            token2022.encode(token2022.MetadataUpdateField(mint, system, "level", request.level)),
        ]
        if collection is not None:
            ixs.append(
                token2022.encode(
                    token2022.GroupInitializeMember(mint, mint, system, collection, system)
                )
            )
        account = ata.address(owner, mint, TOKEN_2022_PROGRAM)
        ixs += [
            ata.create(system, owner, mint, TOKEN_2022_PROGRAM),
            spl_token.encode(
                spl_token.MintToChecked(TOKEN_2022_PROGRAM, mint, account, system, 1, 0)
            ),
            # No one can ever mint a second token.
            spl_token.encode(
                spl_token.SetAuthority(
                    TOKEN_2022_PROGRAM, mint, AuthorityType.MINT_TOKENS, None, system
                )
            ),
        ]
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
        account = token_account or ata.address(owner, mint, TOKEN_2022_PROGRAM)
        payer = fee_payer or owner
        ixs = (
            spl_token.encode(spl_token.BurnChecked(TOKEN_2022_PROGRAM, account, mint, owner, 1, 0)),
            # Closing returns the token account's rent to the owner.
            spl_token.encode(spl_token.CloseAccount(TOKEN_2022_PROGRAM, account, owner, owner)),
        )
        return Plan(ixs, payer, required_signers(payer, owner))

    def collection_plan(
        self, *, system: Pubkey, collection_mint: Pubkey, request: CollectionRequest
    ) -> Plan:
        meta = TokenMetadata(system, collection_mint, request.name, request.symbol, request.uri)
        group = TokenGroup(system, collection_mint, 0, request.max_size)
        fixed: list[token2022.Extension] = [
            GroupPointer(system, collection_mint),
            MetadataPointer(system, collection_mint),
        ]
        ixs = self._create_mint(system, collection_mint, fixed, [meta, group])
        ixs += [
            token2022.encode(
                token2022.InitializeGroupPointer(collection_mint, system, collection_mint)
            ),
            token2022.encode(
                token2022.InitializeMetadataPointer(collection_mint, system, collection_mint)
            ),
            # The collection mint never has supply; its mint authority is only needed to
            # initialise the group.
            spl_token.encode(
                spl_token.InitializeMint2(TOKEN_2022_PROGRAM, collection_mint, 0, system, None)
            ),
            token2022.encode(
                token2022.MetadataInitialize(
                    collection_mint,
                    system,
                    collection_mint,
                    system,
                    request.name,
                    request.symbol,
                    request.uri,
                )
            ),
            token2022.encode(
                token2022.GroupInitialize(
                    collection_mint, collection_mint, system, system, request.max_size
                )
            ),
        ]
        return Plan(tuple(ixs), system, required_signers(system, collection_mint)).check_size()

    def related_addresses(self, mint: Pubkey) -> tuple[Pubkey, ...]:
        return (mint,)
