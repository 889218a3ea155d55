-- Who may open a private sprite's URL: every member who may use the sprite
-- (`org_users`), or only the organization's owners and admins (`admins`).
ALTER TABLE sprites ADD COLUMN url_private_access TEXT NOT NULL DEFAULT 'org_users';
