-- Enterprise SSO (issue 3): the link from an OpenID Connect identity to
-- a phivault account. (issuer, subject) is the only stable and unique
-- key of an OIDC identity (OIDC Core §5.7); e-mail addresses and
-- preferred usernames are never used to link. Issuer and subject are
-- pseudonymous identifiers, not PHI. Timestamps are unix microseconds UTC.

CREATE TABLE sso_links (
	issuer  TEXT COLLATE "C" NOT NULL,
	subject TEXT COLLATE "C" NOT NULL,
	user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
	created BIGINT NOT NULL,
	PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_links_user ON sso_links (user_id);
