package mind

import (
	"context"

	"batos/internal/image"
)

// SaveServerConfig records in pLLM the server "batos run" was told to use,
// so later commands (persona list, doctor) find it without flags. The API
// key is never stored in the image.
func SaveServerConfig(ctx context.Context, db *image.DB, cfg ServerConfig) error {
	return db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.Note("mind: use server " + cfg.URL)
		pllm, err := systemObject(tx, "pLLM")
		if err != nil {
			return err
		}
		for _, s := range []image.Slot{
			{Name: "server_url", Value: image.String(cfg.URL)},
			{Name: "server_api", Value: image.String(string(cfg.API))},
			{Name: "default_model", Value: image.String(cfg.Model)},
		} {
			if err := pllm.Set(s.Name, s.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadServerConfig returns the server configuration pLLM records; a zero
// URL means none was recorded.
func LoadServerConfig(ctx context.Context, db *image.DB) (ServerConfig, error) {
	var cfg ServerConfig
	err := db.View(ctx, func(tx *image.Tx) error {
		pllm, err := systemObject(tx, "pLLM")
		if err != nil {
			return err
		}
		str := func(slot string) string {
			v, _ := pllm.Get(slot)
			s, _ := v.(image.String)
			return string(s)
		}
		cfg.URL, cfg.API, cfg.Model = str("server_url"), API(str("server_api")), str("default_model")
		return nil
	})
	return cfg, err
}

// SaveEmbedModel records the knowledge catalog's embedding model in pLLM
// ("" for none: fixed-size chunks and text search).
func SaveEmbedModel(ctx context.Context, db *image.DB, model string) error {
	return db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		if model == "" {
			tx.Note("mind: no embedding model")
		} else {
			tx.Note("mind: embed with " + model)
		}
		pllm, err := systemObject(tx, "pLLM")
		if err != nil {
			return err
		}
		return pllm.Set("embed_model", image.String(model))
	})
}

// LoadEmbedModel returns the embedding model pLLM records; "" for none.
func LoadEmbedModel(ctx context.Context, db *image.DB) (string, error) {
	var model string
	err := db.View(ctx, func(tx *image.Tx) error {
		pllm, err := systemObject(tx, "pLLM")
		if err != nil {
			return err
		}
		v, _ := pllm.Get("embed_model")
		s, _ := v.(image.String)
		model = string(s)
		return nil
	})
	return model, err
}
